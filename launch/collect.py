"""Collect W4S trajectories: see w4s_jax/cli/collect.py (--config=configs/collect.py[:preset] --config.<key>=...)."""
from w4s_jax.cli.collect import run

if __name__ == "__main__":
    run()

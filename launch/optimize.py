"""Optimise a task's workflow: see w4s_jax/cli/optimize.py (--config=configs/optimize.py[:preset] --config.<key>=...)."""
from w4s_jax.cli.optimize import run

if __name__ == "__main__":
    run()

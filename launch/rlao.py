"""Iterated RLAO: see w4s_jax/cli/rlao.py (--config=configs/rlao.py[:preset] --config.<key>=...)."""
from w4s_jax.cli.rlao import run

if __name__ == "__main__":
    run()

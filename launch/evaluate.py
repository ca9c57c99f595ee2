"""Evaluate a workflow on a benchmark split: see w4s_jax/cli/evaluate.py (--config=configs/evaluate.py[:preset] --config.<key>=...)."""
from w4s_jax.cli.evaluate import run

if __name__ == "__main__":
    run()

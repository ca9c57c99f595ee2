"""Train the meta-agent: see w4s_jax/cli/train.py (flags: --config=configs/train.py:<preset> --config.<key>=...)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from w4s_jax.cli.train import run  # noqa: E402

if __name__ == "__main__":
    run()

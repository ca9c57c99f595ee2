"""Train the meta-agent: see w4s_jax/cli/train.py (flags: --config=configs/train.py:<preset> --config.<key>=...)."""
from w4s_jax.cli.train import run

if __name__ == "__main__":
    run()

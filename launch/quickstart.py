"""The W4S loop end to end on the embedded default: see w4s_jax/cli/quickstart.py."""
from w4s_jax.cli.quickstart import run

if __name__ == "__main__":
    run()

"""Compare RL objectives on the same trajectories: see w4s_jax/cli/compare_objectives.py."""
from w4s_jax.cli.compare_objectives import run

if __name__ == "__main__":
    run()

"""Rollout speed: sandboxed evaluations against a slow simulated API vs the ideal and vs the public W4S
scheme, client CPU per call, sandbox start-up, execute_code rate (w4s_jax/bench/rollout.py).

    python launch/bench_rollout.py                                      # configs/bench_rollout.py:default
    python launch/bench_rollout.py --config.skip_w4s=True --config.reps=1
"""
from w4s_jax.bench import rollout
from w4s_jax.cli import common

CONFIG = common.define_config("bench_rollout")

if __name__ == "__main__":
    common.run(lambda argv: rollout.main(CONFIG.value))

"""Collection speed: turn time vs its slowest candidate, collector CPU per candidate (w4s_jax/bench/collect.py).

    python launch/bench_collect.py                         # configs/bench_collect.py:cpu
"""
from w4s_jax.bench import collect
from w4s_jax.cli import common

CONFIG = common.define_config("bench_collect")

if __name__ == "__main__":
    common.run(lambda argv: collect.main(CONFIG.value))

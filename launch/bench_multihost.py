"""Per-step overhead of multi-process training: 2 processes x 4 devices vs 1 process x 8 (see
w4s_jax/bench/multihost.py).

    python launch/bench_multihost.py                                          # configs/bench_multihost.py:tiny
    python launch/bench_multihost.py --config=configs/bench_multihost.py:bench-50m
"""
from w4s_jax.bench import multihost
from w4s_jax.cli import common

CONFIG = common.define_config("bench_multihost")

if __name__ == "__main__":
    common.run(lambda argv: multihost.main(CONFIG.value))

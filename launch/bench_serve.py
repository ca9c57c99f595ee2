"""Policy server throughput: concurrent chat requests vs the same ones in sequence, and the server's overhead
over one direct sampler call (w4s_jax/bench/serve.py).

    python launch/bench_serve.py                                        # configs/bench_serve.py:cpu
    python launch/bench_serve.py --config=configs/bench_serve.py:tiny
"""
from w4s_jax.bench import serve
from w4s_jax.cli import common

CONFIG = common.define_config("bench_serve")

if __name__ == "__main__":
    common.run(lambda argv: serve.main(CONFIG.value))

"""Code-scoring speed: the canonical HumanEval solutions scored concurrently in sandboxed workers vs a plain
sequential subprocess-per-item scorer (w4s_jax/bench/code_scoring.py).

    python launch/bench_code_scoring.py --config.data_dir=../shared/data        # configs/bench_code_scoring.py
"""
from w4s_jax.bench import code_scoring
from w4s_jax.cli import common

CONFIG = common.define_config("bench_code_scoring")

if __name__ == "__main__":
    common.run(lambda argv: code_scoring.main(CONFIG.value))

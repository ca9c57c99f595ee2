"""Sampler decode speed vs transformers `generate` (CPU) or alone against the HBM roofline (accelerator).

    python launch/bench_sampler.py                                      # configs/bench_sampler.py:cpu
    python launch/bench_sampler.py --config=configs/bench_sampler.py:accelerator
"""
from w4s_jax.bench import sampler
from w4s_jax.cli import common

CONFIG = common.define_config("bench_sampler")

if __name__ == "__main__":
    common.run(lambda argv: sampler.main(CONFIG.value))

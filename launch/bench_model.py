"""Model forward+backward speed vs transformers/PyTorch (CPU) or alone with MFU (accelerator).

    python launch/bench_model.py                                        # configs/bench_model.py:cpu
    python launch/bench_model.py --config=configs/bench_model.py:accelerator --config.seq=8192
"""
from w4s_jax.bench import model
from w4s_jax.cli import common

CONFIG = common.define_config("bench_model")

if __name__ == "__main__":
    common.run(lambda argv: model.main(CONFIG.value))

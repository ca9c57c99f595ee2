"""Train-step speed vs the public W4S formulation in PyTorch (CPU), or alone with MFU and peak memory
(accelerator).

    python launch/bench_train.py                                        # configs/bench_train.py:cpu
    python launch/bench_train.py --config=configs/bench_train.py:cpu-lora
    python launch/bench_train.py --config=configs/bench_train.py:accelerator-full
"""
from w4s_jax.bench import train
from w4s_jax.cli import common

CONFIG = common.define_config("bench_train")

if __name__ == "__main__":
    common.run(lambda argv: train.main(CONFIG.value))

"""Every accelerator figure of the README in one run of at most 8 minutes on one H100/H200, into
<workdir>/bench_gpu.json (w4s_jax/bench/gpu.py).

    python launch/bench_gpu.py --config.workdir=runs/bench-h100        # configs/bench_gpu.py:gpu
    python launch/bench_gpu.py --config=configs/bench_gpu.py:tiny      # the same sections, tiny, on a CPU
"""
from w4s_jax.bench import gpu
from w4s_jax.cli import common

CONFIG = common.define_config("bench_gpu")

if __name__ == "__main__":
    common.run(lambda argv: gpu.main(CONFIG.value))

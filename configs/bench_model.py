"""launch/bench_model.py: forward+backward speed. `--config=configs/bench_model.py:<preset>` with presets

  cpu          ours vs transformers/PyTorch on the CPU, bench-50m (42.8M params, 152k vocab), 2 x 512 tokens
  tiny         the same on the tiny model (seconds; what the test runs)
  accelerator  ours alone on one GPU/TPU: Qwen2.5-7B shapes, 1 x 4096 tokens, bf16, MFU and peak memory

Shared bench keys (workdir, seed, reps, mode, model): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "cpu": dict(mode="reference", model="bench-50m", batch=2, seq=512, loss_frac=0.3, reps=5, compare_memory=True),
    "tiny": dict(mode="reference", model="tiny", batch=2, seq=64, loss_frac=0.3, reps=3, compare_memory=False),
    "accelerator": dict(mode="accelerator", model="qwen2.5-7b", batch=1, seq=4096, dtype="bfloat16", remat="full",
                        peak_tflops=0.0),  # 0: the card's peak from w4s_jax/flops.py
}


def get_config(preset=None):
    return bench_config("bench_model", PRESETS, preset)

"""launch/bench_train.py: train-step speed. `--config=configs/bench_train.py:<preset>` with presets

  cpu               ours vs the public W4S formulation in PyTorch on the CPU, full training: bench-50m, 4
                    examples of up to 1024 tokens, 30% of them action
  cpu-lora          the same with LoRA rank 16 on the seven projections, against peft LoRA of the same shape
  tiny, tiny-lora   the same on the tiny model (seconds; what the tests run)
  accelerator-lora  ours alone on one GPU/TPU: Qwen2.5-Coder-7B shapes, 1 x 8192 tokens, bf16, full remat:
                    tokens/s, MFU and peak memory (torch_reference=True: also PyTorch + peft on CUDA)
  accelerator-full  the same, full-parameter training with bf16 Adam state

Shared bench keys (workdir, seed, reps, mode, model): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

_CPU = dict(mode="reference", model="bench-50m", batch=4, seq=1024, action_frac=0.3, lora=False, lora_rank=16)
_TINY = dict(_CPU, model="tiny", batch=2, seq=64)
_ACCELERATOR = dict(mode="accelerator", model="qwen2.5-coder-7b", batch=1, seq=8192, lora=True, lora_rank=16,
                    dtype="bfloat16", remat="full", peak_tflops=0.0, torch_reference=False)  # 0: from the table

PRESETS = {
    "cpu": _CPU,
    "cpu-lora": dict(_CPU, lora=True),
    "tiny": _TINY,
    "tiny-lora": dict(_TINY, lora=True),
    "accelerator-lora": _ACCELERATOR,
    "accelerator-full": dict(_ACCELERATOR, lora=False),
}


def get_config(preset=None):
    return bench_config("bench_train", PRESETS, preset)

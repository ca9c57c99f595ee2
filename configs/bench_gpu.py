"""launch/bench_gpu.py: every accelerator figure of the README in one run (w4s_jax/bench/gpu.py).
`--config=configs/bench_gpu.py:<preset>` with presets

  gpu   one H100/H200 (or any card in w4s_jax/flops.py's table): decode at batch 5 against the HBM roofline,
        7B forward+backward at 4096 tokens, 7B RLAO train step at 8192 tokens with LoRA and full; at most
        `budget_s` = 480 s in all
  tiny  the same sections on the tiny model on the CPU (what the test runs); peak_tflops and hbm_gbps are
        bounds no CPU reaches, so MFU and roofline fractions must come out below 1

Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py. peak_tflops / hbm_gbps = 0: the card's
figures from the table.
"""
from w4s_jax.bench.config import bench_config

_TRAIN_7B = dict(model="qwen2.5-coder-7b", batch=1, seq=8192, lora=True, lora_rank=16, dtype="bfloat16",
                 remat="full")
_TRAIN_TINY = dict(_TRAIN_7B, model="tiny", seq=64, dtype="float32")

PRESETS = {
    "gpu": dict(budget_s=480.0, peak_tflops=0.0, hbm_gbps=0.0,
                decode=dict(model="qwen2.5-7b", dtype="bfloat16", prompt_len=4096, n=5, new_tokens=512),
                model_fwd_bwd=dict(model="qwen2.5-7b", batch=1, seq=4096, dtype="bfloat16", remat="full"),
                train_lora=_TRAIN_7B, train_full=dict(_TRAIN_7B, lora=False)),
    "tiny": dict(budget_s=300.0, peak_tflops=10.0, hbm_gbps=10_000.0, reps=2,
                 decode=dict(model="tiny", dtype="float32", prompt_len=50, n=5, new_tokens=8),
                 model_fwd_bwd=dict(model="tiny", batch=1, seq=64, dtype="float32", remat="full"),
                 train_lora=_TRAIN_TINY, train_full=dict(_TRAIN_TINY, lora=False)),
}


def get_config(preset=None):
    return bench_config("bench_gpu", PRESETS, preset)

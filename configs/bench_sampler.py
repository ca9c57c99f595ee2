"""launch/bench_sampler.py: decode speed. `--config=configs/bench_sampler.py:<preset>` with presets

  cpu          ours vs transformers `generate` on the CPU, bench-50m fp32: 5 samples of one 1024-token prompt,
               256 new tokens, temperature 1
  tiny         the same on the tiny model (seconds; what the test runs)
  accelerator  ours alone on one GPU/TPU: Qwen2.5-7B shapes, bf16, 5 samples of a 4096-token prompt, 512 new
               tokens; decode tokens/s as a fraction of the HBM roofline

Shared bench keys (workdir, seed, reps, mode, model): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "cpu": dict(mode="reference", model="bench-50m", prompt_len=1024, n=5, new_tokens=256, temperature=1.0,
                top_p=1.0),
    "tiny": dict(mode="reference", model="tiny", prompt_len=50, n=5, new_tokens=16, temperature=1.0, top_p=1.0),
    "accelerator": dict(mode="accelerator", model="qwen2.5-7b", prompt_len=4096, n=5, new_tokens=512,
                        dtype="bfloat16", hbm_gbps=0.0),  # 0: the card's bandwidth from w4s_jax/flops.py
}


def get_config(preset=None):
    return bench_config("bench_sampler", PRESETS, preset)

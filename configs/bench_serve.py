"""launch/bench_serve.py: policy server throughput. `--config=configs/bench_serve.py:<preset>` with presets

  cpu   bench-50m fp32 on the CPU: 16 concurrent chat requests (n=5, 256 new tokens, ~256-token prompts,
        temperature 1) against the same requests one after another through the same server, and against one
        direct sampler call on the same batch (the server's overhead); about 15 min per repetition on 2 cores
  tiny  the same on the tiny model, 4 requests x n=2 x 16 tokens (seconds; what the test runs)

Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "cpu": dict(model="bench-50m", requests=16, n=5, new_tokens=256, prompt_tokens=256, temperature=1.0, top_p=1.0,
                batch_wait_ms=20.0, reps=1),
    "tiny": dict(model="tiny", requests=4, n=2, new_tokens=16, prompt_tokens=24, temperature=1.0, top_p=1.0,
                 batch_wait_ms=50.0, reps=1),
}


def get_config(preset=None):
    return bench_config("bench_serve", PRESETS, preset)

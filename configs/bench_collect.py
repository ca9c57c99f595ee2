"""launch/bench_collect.py: a W4S turn's time against its slowest candidate, and the collector's CPU per
candidate outside evaluation. `--config=configs/bench_collect.py:<preset>` with presets

  cpu     m = 5 candidates, 32 items, 200 ms executor latency (the issue's setting)
  tiny    m = 3, 8 items, 50 ms (seconds; what the test runs)

Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "cpu": dict(latency_s=0.2, candidates=5, n_items=32),
    "tiny": dict(latency_s=0.05, candidates=3, n_items=8),
}


def get_config(preset=None):
    return bench_config("bench_collect", PRESETS, preset)

"""launch/bench_rollout.py: rollout speed. `--config=configs/bench_rollout.py:<preset>` with presets

  default  5 candidate workflows x 128 items x 3 sequential calls against a 1 s-latency simulated API, 256
           in flight (ideal 7.5 s), vs the public W4S scheme (candidates in sequence, 48 threads); client CPU
           per call; sandbox start-up and execute_code rate (about 1 min per repetition)
  small    the same at a small scale (seconds; what the test runs)

`skip_w4s=True` leaves out the public W4S scheme (about 47 s per repetition). Shared bench keys (workdir,
seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "default": dict(latency_s=1.0, candidates=5, items_per_candidate=128, calls=3, concurrency=256, w4s_threads=48,
                    skip_w4s=False, cpu_calls=3000, sandbox_reps=5, exec_calls=1280),
    "small": dict(latency_s=0.2, candidates=2, items_per_candidate=8, calls=2, concurrency=16, w4s_threads=4,
                  skip_w4s=False, cpu_calls=100, sandbox_reps=1, exec_calls=64, reps=1),
}


def get_config(preset=None):
    return bench_config("bench_rollout", PRESETS, preset)

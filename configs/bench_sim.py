"""launch/bench_sim.py: simulated-executor speed. `--config=configs/bench_sim.py:<preset>` with presets

  default  the requests of the six seed workflows of synth_arith on 100 items (about 1200 requests, 1800
           completions) served by the simulated strong model and by the scripted server, each in its own
           process, 64 in flight; server CPU per request and per completion (about 30 s)
  small    the same on 10 items, one repetition (seconds; what the test runs)

Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "default": dict(task="synth_arith", items=100, concurrency=64, data_dir=""),
    "small": dict(task="synth_arith", items=10, concurrency=8, data_dir="", reps=1),
}


def get_config(preset=None):
    return bench_config("bench_sim", PRESETS, preset)

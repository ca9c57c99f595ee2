"""launch/bench_sim.py: simulated-executor speed. `--config=configs/bench_sim.py:<preset>` with presets

  default  the requests of the six seed workflows of synth_arith on 100 items (about 1200 requests, 1800
           completions), then those of 8 workflows drawn from the tiny meta-agent's design space on the same
           items, served by the simulated strong model and by the scripted server, each in its own process,
           64 in flight; server CPU per request and per completion, three passes (about 40 s)
  small    the same on 10 items and 3 drawn workflows, one repetition (seconds; what the test runs)

`reference_tree`: another checkout (e.g. `git worktree add /tmp/ref <rev>`) whose scripted server is measured
in the same run. Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "default": dict(task="synth_arith", items=100, other_workflows=8, concurrency=64, data_dir="",
                    reference_tree=""),
    "small": dict(task="synth_arith", items=10, other_workflows=3, concurrency=8, data_dir="", reference_tree="",
                  reps=1),
}


def get_config(preset=None):
    return bench_config("bench_sim", PRESETS, preset)

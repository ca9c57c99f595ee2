"""launch/bench_code_scoring.py: code-scoring speed. `--config=configs/bench_code_scoring.py:<preset>` with presets

  default  the 164 canonical HumanEval solutions, scored concurrently in sandboxed workers vs a plain
           sequential scorer (one interpreter per item), 3 interleaved repetitions (about a minute)
  small    the first 8 items, 1 repetition (seconds; what the test runs)

`data_dir`: where humaneval_validate.jsonl / humaneval_test.jsonl are (empty: $W4S_DATA_DIR); `parallel`:
test programs at once (0: one per CPU). Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "default": dict(task="humaneval", data_dir="", limit=0, timeout_s=15.0, parallel=0),
    "small": dict(task="humaneval", data_dir="", limit=8, timeout_s=15.0, parallel=0, reps=1),
}


def get_config(preset=None):
    return bench_config("bench_code_scoring", PRESETS, preset)

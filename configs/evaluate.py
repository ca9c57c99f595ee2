"""Evaluate one workflow on one benchmark split: `--config=configs/evaluate.py[:<preset>]` with presets

  gpt-4o-mini, gpt-4o, gpt-3.5-turbo    the paper's executors on the OpenAI API (default: gpt-4o-mini)

    python launch/evaluate.py --config.task=humaneval --config.data_dir=../shared/data \
        --config.split=valid --config.workflow=self_test --config.workdir=runs/eval-humaneval

`workflow` is the name of one of the task's seed workflows or the path of a file defining
`solver(agent, task)`; `limit` > 0 keeps the first `limit` items of the split. Any OpenAI-compatible server
works through `executor.base_url` / `executor.model` (a local one needs no API key). The config is locked:
a mistyped key is an error.
"""
from __future__ import annotations

import ml_collections

PRESETS = ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    preset = preset or "gpt-4o-mini"
    if preset not in PRESETS:
        raise ValueError(f"configs/evaluate.py: unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.preset = preset
    c.task = ""                 # a registered task name (w4s_jax.tasks.names())
    c.data_dir = ""             # local benchmark files; empty = $W4S_DATA_DIR, then the hub
    c.split = "valid"           # train | valid | test
    c.workflow = "cot"          # a seed workflow name, or a file defining solver(agent, task)
    c.limit = 0                 # > 0: only the first `limit` items of the split
    c.workdir = "runs/evaluate"
    c.seed = 0                  # executor sampling and the bootstrap interval
    c.progress = True

    c.executor = ml_collections.ConfigDict()
    c.executor.base_url = "https://api.openai.com/v1"
    c.executor.model = preset
    c.executor.api_key_env = "OPENAI_API_KEY"
    c.executor.max_concurrency = 64
    c.executor.cache_path = ""  # SQLite response cache (replays identical runs); empty = none
    c.executor.budget_usd = 0.0  # 0 = no cap; past the cap no new calls start (the rest: infrastructure errors)

    c.sandbox = ml_collections.ConfigDict()
    c.sandbox.mode = "bwrap"    # "none" runs the workflow unconfined: trusted code only
    c.sandbox.threads = 64      # items in flight at once in the workflow's sandbox
    c.sandbox.item_timeout_s = 120.0   # per item, time waiting on the executor API not counted
    return c

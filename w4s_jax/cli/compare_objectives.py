"""`launch/compare_objectives.py`: rwr, sft, awr, dpo (and any registered objective) trained on the same
trajectories, each trained meta-agent searching the same held-out tasks over seeds; table, JSON and PNG.

    python launch/compare_objectives.py                                  # the tiny embedded setting
    python launch/compare_objectives.py --config=configs/compare_objectives.py:paper-7b \
        --config.data_path='runs/collect/trajectories*.jsonl' --config.initial_policy=/models/Qwen2.5-Coder-7B-Instruct \
        --config.search.executor.base_url=https://api.openai.com/v1
"""
from __future__ import annotations

import json
import logging as pylogging

from absl import app, logging

from .common import define_config, fail, run as run_main

_CONFIG = define_config("compare_objectives")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.compare import compare_objectives, table
    from w4s_jax.quickstart import QuickstartError
    from w4s_jax.rollout.service import CollectionError

    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("absl").setLevel(pylogging.WARNING)
    try:
        out = compare_objectives(_CONFIG.value)
    except (QuickstartError, ValueError, KeyError) as e:
        fail(str(e).strip("'\""))
    except CollectionError as e:
        fail(str(e), status=3)
    print(table(out["objectives"]))
    print(json.dumps(out, default=str))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

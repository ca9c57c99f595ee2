"""`launch/compare_objectives.py`: rwr, sft, awr, dpo (and any registered objective) trained on the same
trajectories, each trained meta-agent searching the same held-out tasks over seeds; table, JSON and PNG.

    python launch/compare_objectives.py                                  # the tiny embedded setting
    python launch/compare_objectives.py --config=configs/compare_objectives.py:paper-7b \
        --config.data_path='runs/collect/trajectories*.jsonl' --config.initial_policy=/models/Qwen2.5-Coder-7B-Instruct \
        --config.search.executor.base_url=https://api.openai.com/v1
"""
from __future__ import annotations

import json

from .common import define_config, run as run_main, run_job

_CONFIG = define_config("compare_objectives")


def show(out) -> None:
    from w4s_jax.quickstart import table

    print(table(out["objectives"], first_column="objective"))
    print(json.dumps(out, default=str))


def main(argv):
    from w4s_jax.compare import compare_objectives
    from w4s_jax.rollout.service import CollectionError

    run_job(argv, lambda: compare_objectives(_CONFIG.value), show, stopped=(CollectionError,))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

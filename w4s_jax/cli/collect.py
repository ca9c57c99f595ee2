"""`launch/collect.py`: collect W4S trajectories (tasks x seeds, T turns, best-of-m) for RLAO training.

    python launch/collect.py --config=configs/collect.py:paper-gpt-4o-mini --config.task=gsm_hard \
        --config.workdir=runs/collect

Writes <workdir>/trajectories.jsonl (or one file per shard), summary.json and run_info.json. Rerunning the
same command resumes. Bad input ends with one line on stderr and status 2; a run stopped early by the
budget or the API (everything finished kept) ends with status 3.
"""
from __future__ import annotations

import asyncio
import json

from .common import define_config, run as run_main, run_job

_CONFIG = define_config("collect")


def show(out) -> None:
    print(json.dumps({k: out[k] for k in ("run_id", "records", "episodes", "per_turn", "trajectory_usage")},
                     default=str))


def main(argv):
    from w4s_jax.rollout.service import CollectionError, collect

    run_job(argv, lambda: asyncio.run(collect(_CONFIG.value)), show, stopped=(CollectionError,))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

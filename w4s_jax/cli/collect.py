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
import logging as pylogging

from absl import app, logging

from .common import define_config, fail, run as run_main

_CONFIG = define_config("collect")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.rollout.service import CollectionError, collect
    from w4s_jax.trajectories import TrajectoryError

    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("absl").setLevel(pylogging.WARNING)
    try:
        summary = asyncio.run(collect(_CONFIG.value))
    except CollectionError as e:
        fail(str(e), status=3)
    except (ValueError, KeyError, TrajectoryError) as e:
        fail(str(e).strip("'\""))
    print(json.dumps({k: summary[k] for k in ("run_id", "records", "episodes", "per_turn", "trajectory_usage")},
                     default=str))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

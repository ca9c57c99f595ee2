"""`launch/rlao.py`: iterated RLAO, R rounds of collect -> train -> export below one workdir (resumable).

    python launch/rlao.py --config=configs/rlao.py:tiny --config.initial_policy=runs/sft/policy/200 \
        --config.collect.executor.base_url=http://127.0.0.1:8001/v1 --config.workdir=runs/rlao

Writes <workdir>/rlao_summary.json, rlao.png and tb/; see w4s_jax/rlao.py for the layout.
"""
from __future__ import annotations

import json
import logging as pylogging

from absl import app, logging

from .common import define_config, fail, run as run_main

_CONFIG = define_config("rlao")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.rlao import rlao
    from w4s_jax.rollout.service import CollectionError
    from w4s_jax.trajectories import TrajectoryError

    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("absl").setLevel(pylogging.WARNING)
    try:
        out = rlao(_CONFIG.value)
    except CollectionError as e:
        fail(str(e), status=3)
    except (ValueError, KeyError, TrajectoryError) as e:
        fail(str(e).strip("'\""))
    print(json.dumps(out, default=str))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

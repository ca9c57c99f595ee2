"""`launch/train.py`: train the meta-agent with RLAO (or another objective) on trajectory JSONL.

    python launch/train.py --config=configs/train.py:tiny --config.workdir=/tmp/w4s-tiny
    python launch/train.py --config=configs/train.py:qwen2.5-coder-7b-lora-1gpu \
        --config.model.path=/models/Qwen2.5-Coder-7B-Instruct --config.data.path='runs/collect/*.jsonl'

Bad input (a config typo or value, a malformed trajectory line, an empty dataset) ends the run with one
line on stderr naming what and where, and exit status 2.
"""
from __future__ import annotations

import json
import sys

from absl import app, logging

from w4s_jax.cli import common

_CONFIG = common.define_config("train")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.models import ConfigError
    from w4s_jax.models.safetensors_io import CheckpointError
    from w4s_jax.train.trainer import train
    from w4s_jax.trajectories import TrajectoryError

    logging.set_verbosity(logging.INFO)
    import logging as pylogging

    pylogging.getLogger("absl").setLevel(pylogging.WARNING)  # Orbax's per-save chatter; our own logs stay
    try:
        summary = train(_CONFIG.value)
    except (ConfigError, TrajectoryError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary, default=str))


def run(argv=None):
    common.run(main, argv)


if __name__ == "__main__":
    run()

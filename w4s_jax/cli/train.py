"""`launch/train.py`: train the meta-agent with RLAO (or another objective) on trajectory JSONL.

    python launch/train.py --config=configs/train.py:tiny --config.workdir=/tmp/w4s-tiny
    python launch/train.py --config=configs/train.py:qwen2.5-coder-7b-lora-1gpu \
        --config.model.path=/models/Qwen2.5-Coder-7B-Instruct --config.data.path='runs/collect/*.jsonl'

Bad input (a config typo or value, a malformed trajectory line, an empty dataset) ends the run with one
line on stderr naming what and where, and exit status 2.
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DEFAULT = os.path.join(_REPO, "configs", "train.py")

_CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT, "train config: configs/train.py[:preset]",
                                          lock_config=True)


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


def _config_error(e: BaseException) -> str:
    msg = str(e.args[0] if e.args else e)
    if "Traceback" in msg:  # a config file that raised: keep its final line
        msg = [line for line in msg.splitlines() if line.strip()][-1]
    msg = msg.replace("\\'", "'").replace("\\n", " ").replace("'", "")
    return " ".join(msg.split())


def _parse_flags(argv):
    try:  # a mistyped --config.<key> is one clear line rather than a traceback
        return flags.FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
        print(f"error: bad --config override: {_config_error(e)}", file=sys.stderr)
        sys.exit(2)


def run(argv=None):
    app.run(main, argv=argv, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()

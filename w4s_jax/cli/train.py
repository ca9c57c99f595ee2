"""`launch/train.py`: train the meta-agent with RLAO (or another objective) on trajectory JSONL.

    python launch/train.py --config=configs/train.py:tiny --config.workdir=/tmp/w4s-tiny
    python launch/train.py --config=configs/train.py:qwen2.5-coder-7b-lora-1gpu \
        --config.model.path=/models/Qwen2.5-Coder-7B-Instruct --config.data.path='runs/collect/*.jsonl'

Bad input (a config typo or value, a malformed trajectory line, an empty dataset) ends the run with one
line on stderr naming what and where, and exit status 2.

Several hosts (`--config.distributed=True`): every host runs the same command, adding, where the cluster is
not detected (several GPU hosts; the localhost simulation), who it is:

    --config.dist.coordinator=HOST0:PORT --config.dist.num_processes=N --config.dist.process_id=I

An error on one host ends every host: the failing one prints "error: process I of N: ..." and the others
"error: process I of N failed: ..." (exit status 2 for bad input, 1 otherwise). See README, "Multi-host
training".
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
    from w4s_jax.train import distributed
    from w4s_jax.train.trainer import train
    from w4s_jax.trajectories import TrajectoryError

    logging.set_verbosity(logging.INFO)
    import logging as pylogging

    pylogging.getLogger("absl").setLevel(pylogging.WARNING)  # Orbax's per-save chatter; our own logs stay
    try:
        summary = train(_CONFIG.value)
    except (ConfigError, TrajectoryError, CheckpointError) as e:
        _leave(distributed, f"error: {e}", 2)
    except Exception as e:
        if not distributed.failed():
            raise
        import traceback

        print(traceback.format_exc(), file=sys.stderr)
        hint = ""
        if type(e).__name__ == "JaxRuntimeError":  # a collective failing here usually means a peer is gone
            hint = " (a collective failed: another process of the run may have stopped; its log says why)"
        _leave(distributed, f"error: {type(e).__name__}: {e}{hint}", 1)
    print(json.dumps(summary, default=str))


def _leave(distributed, message: str, status: int):
    """One process's error line. After a failure reported to the other hosts, exit at once: JAX's exit-time
    shutdown would wait for the hosts that have left."""
    if distributed.failed():
        import jax

        message = message.replace("error: ", f"error: process {jax.process_index()} of {jax.process_count()}: ", 1)
        print(message, file=sys.stderr, flush=True)
        distributed.end_process(status)
    print(message, file=sys.stderr)
    sys.exit(status)


def run(argv=None):
    common.run(main, argv)


if __name__ == "__main__":
    run()

"""`launch/rlao.py`: iterated RLAO, R rounds of collect -> train -> export below one workdir (resumable).

    python launch/rlao.py --config=configs/rlao.py:tiny --config.initial_policy=runs/sft/policy/200 \
        --config.collect.executor.base_url=http://127.0.0.1:8001/v1 --config.workdir=runs/rlao

Writes <workdir>/rlao_summary.json, rlao.png and tb/; see w4s_jax/rlao.py for the layout.
"""
from __future__ import annotations

import json

from .common import define_config, run as run_main, run_job

_CONFIG = define_config("rlao")


def show(out) -> None:
    print(json.dumps(out, default=str))


def main(argv):
    from w4s_jax.rlao import rlao
    from w4s_jax.rollout.service import CollectionError

    run_job(argv, lambda: rlao(_CONFIG.value), show, stopped=(CollectionError,))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

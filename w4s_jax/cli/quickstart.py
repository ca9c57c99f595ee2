"""`launch/quickstart.py`: the whole W4S loop on a laptop (simulated executor, tiny meta-agent): build the
meta-agent, iterated RLAO, then searches by the untrained and the trained meta-agent on held-out items.

    python launch/quickstart.py                       # writes runs/quickstart/{summary.json,quickstart.png}

Bad input or a missing prerequisite: one line on stderr, status 2.
"""
from __future__ import annotations

import json

from .common import define_config, run as run_main, run_job

_CONFIG = define_config("quickstart")


def show(out) -> None:
    from w4s_jax.quickstart import mix_table, table

    summary, report = out["summary"], out["report"]
    print(table(summary))
    print()
    print(mix_table(report["technique_mix"]))
    print()
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["timings"].items() if isinstance(v, float)))
    print(json.dumps({"summary": summary}, default=str))


def main(argv):
    from w4s_jax.rollout.service import CollectionError
    from w4s_jax.quickstart import quickstart

    run_job(argv, lambda: quickstart(_CONFIG.value), show, stopped=(CollectionError,))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

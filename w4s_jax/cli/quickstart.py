"""`launch/quickstart.py`: the whole W4S loop on a laptop (simulated executor, tiny meta-agent): build the
meta-agent, iterated RLAO, then searches by the untrained and the trained meta-agent on held-out items.

    python launch/quickstart.py                       # writes runs/quickstart/{summary.json,quickstart.png}

Bad input or a missing prerequisite: one line on stderr, status 2.
"""
from __future__ import annotations

import json
import logging as pylogging

from absl import app, logging

from .common import define_config, fail, run as run_main

_CONFIG = define_config("quickstart")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.quickstart import QuickstartError, quickstart, table
    from w4s_jax.rollout.service import CollectionError

    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("absl").setLevel(pylogging.WARNING)
    try:
        out = quickstart(_CONFIG.value)
    except (QuickstartError, ValueError, KeyError) as e:
        fail(str(e).strip("'\""))
    except CollectionError as e:
        fail(str(e), status=3)
    summary, report = out["summary"], out["report"]
    print(table(summary))
    mix = report["technique_mix"]
    for label in mix:
        top = sorted(mix[label]["fractions"].items(), key=lambda kv: -kv[1])[:8]
        print(f"technique mix ({label}, {mix[label]['workflows']} chosen workflows): "
              + ", ".join(f"{k} {v:.2f}" for k, v in top))
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["timings"].items() if isinstance(v, float)))
    print(json.dumps({"summary": summary}, default=str))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

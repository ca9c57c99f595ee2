"""`launch/evaluate.py`: evaluate one workflow on one benchmark split with the strong executor.

    python launch/evaluate.py --config.task=humaneval --config.data_dir=../shared/data \
        --config.split=valid --config.workflow=self_test --config.workdir=runs/eval-humaneval

Runs `solver(agent, task)` on every item in the sandbox, scores the answers with the task's scorer, prints
the accuracy with its bootstrap 95% interval and writes `<workdir>/eval.json`: accuracy, ci95, n, per-item
records, usage, cost and the resolved config (the run itself: w4s_jax/rollout/eval_run.py). Bad input
(unknown task, split or workflow, a workflow that cannot load, missing data files, a config typo) ends the
run with one line on stderr and exit status 2; a run whose accuracy could not be measured (executor API
failures) writes its eval.json and exits with 1.
"""
from __future__ import annotations

import sys

from absl import app

from .common import define_config, fail, run as run_main

_CONFIG = define_config("evaluate")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from w4s_jax.rollout import SandboxUnavailableError, WorkflowCodeError
    from w4s_jax.rollout.eval_run import EvaluateError, run_evaluation, summary_line

    try:
        out = run_evaluation(_CONFIG.value)
    except (EvaluateError, WorkflowCodeError, SandboxUnavailableError) as e:
        fail(str(e))
    except (ValueError, OSError) as e:  # bad data files, a missing API key, an unreadable workdir
        fail(f"{type(e).__name__}: {e}")
    print(summary_line(out))
    if out["accuracy"] is None:
        sys.exit(1)


def run(argv=None):
    run_main(main, argv)


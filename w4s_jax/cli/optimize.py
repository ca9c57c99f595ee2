"""`launch/optimize.py`: optimise one task's workflow with a meta-agent (valid split), score it on test once.

    python launch/optimize.py --config=configs/optimize.py:paper-gpt-4o-mini --config.task=gsm_hard \
        --config.workdir=runs/opt-gsm-hard

Writes <workdir>/best_workflow.py, summary.json, test_eval.json, trajectories.jsonl, run_info.json.
Rerunning resumes. Bad input: one line on stderr, status 2; stopped early (budget, API): status 3.
"""
from __future__ import annotations

import asyncio
import json

from .common import define_config, run as run_main, run_job

_CONFIG = define_config("optimize")


def table(summary: dict) -> str:
    rows = []
    for label, e in summary.items():
        curve = " ".join(f"{a:.3f}" for a in e["best_valid_acc_per_turn"])
        lo, hi = e["test_ci95"]
        rows.append(f"{label}: task {e['task']}, best validation accuracy per turn: {curve}\n"
                    f"  chosen: {e['best_source']} (valid {e['best_valid_acc']:.3f} on {e['valid_n']} items)\n"
                    f"  test accuracy {e['test_acc']:.3f} [95% CI {lo:.3f}, {hi:.3f}] on {e['test_n']} items; "
                    f"executor cost ${e['search_cost_usd'] + e['test_cost_usd']:.4f}")
    return "\n".join(rows)


def show(out) -> None:
    print(table(out))
    print(json.dumps(out, default=str))


def main(argv):
    from w4s_jax.rollout.optimize import optimize
    from w4s_jax.rollout.service import CollectionError

    run_job(argv, lambda: asyncio.run(optimize(_CONFIG.value)), show, stopped=(CollectionError,))


def run(argv=None):
    run_main(main, argv)


if __name__ == "__main__":
    run()

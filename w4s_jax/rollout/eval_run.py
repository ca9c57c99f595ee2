"""One evaluation run from a config (configs/evaluate.py's keys): a workflow on one split of one task.

Runs `solver(agent, task)` on every item in the sandbox, scores the answers with the task's scorer, and
writes `<workdir>/eval.json`: accuracy, its percentile-bootstrap 95% interval, n, per-item records, usage,
cost and the resolved config. `launch/evaluate.py` (w4s_jax/cli/evaluate.py) is the command line around it.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys


class EvaluateError(ValueError):
    """Bad input to an evaluation run; the message says what and where."""


def resolve_workflow(task, spec: str) -> tuple[str, str]:
    """(name, source) of a seed workflow of `task`, or of a file defining `solver`."""
    seeds = task.seed_workflows()
    if spec in seeds:
        return spec, seeds[spec]
    if spec and os.path.isfile(spec):
        with open(spec, encoding="utf-8") as f:
            return os.path.abspath(spec), f.read()
    raise EvaluateError(f"workflow {spec!r} is neither a seed workflow of task {task.name!r} "
                        f"({', '.join(sorted(seeds)) or 'none'}) nor a file")


def _setup(cfg):
    from w4s_jax import tasks

    if not cfg.task:
        raise EvaluateError(f"set --config.task to one of: {', '.join(tasks.names())}")
    if cfg.split not in tasks.SPLITS:
        raise EvaluateError(f"split {cfg.split!r} is not one of {', '.join(tasks.SPLITS)}")
    if cfg.limit < 0:
        raise EvaluateError(f"limit must be >= 0 (0 = every item), got {cfg.limit}")
    try:
        task = tasks.get(cfg.task, cfg.data_dir or None)
    except KeyError as e:
        raise EvaluateError(str(e.args[0] if e.args else e)) from None
    items = task.items(cfg.split)
    if cfg.limit:
        items = items[: cfg.limit]
    if not items:
        raise EvaluateError(f"task {cfg.task!r} has no items in split {cfg.split!r}")
    name, code = resolve_workflow(task, cfg.workflow)
    return task, items, name, code


async def _run(cfg, task, items, code, on_result):
    from .evaluate import evaluate_workflow
    from .executor import Executor

    ex_cfg = cfg.executor
    async with Executor(ex_cfg.base_url, model=ex_cfg.model, api_key_env=ex_cfg.api_key_env,
                        max_concurrency=ex_cfg.max_concurrency, cache_path=ex_cfg.cache_path or None,
                        budget_usd=ex_cfg.budget_usd or None, seed=cfg.seed) as executor:
        try:
            return await evaluate_workflow(code, task, items, executor, sandbox=cfg.sandbox.mode,
                                           threads=cfg.sandbox.threads, item_timeout_s=cfg.sandbox.item_timeout_s,
                                           on_result=on_result)
        finally:
            executor.close_cache()


def run_evaluation(cfg) -> dict:
    """Run the evaluation `cfg` describes; write and return the contents of `<workdir>/eval.json`."""
    from tqdm import tqdm

    from .stats import bootstrap_ci

    task, items, name, code = _setup(cfg)
    os.makedirs(cfg.workdir, exist_ok=True)
    bar = tqdm(total=len(items), desc=f"{cfg.task}/{cfg.split} {os.path.basename(name)}", unit="item",
               disable=not cfg.progress, file=sys.stderr)
    try:
        res = asyncio.run(_run(cfg, task, items, code, lambda i: bar.update(1)))
    finally:
        bar.close()
    scored = [r.score for r in res.records if r.infra_error is None]
    ci = list(bootstrap_ci(scored, seed=cfg.seed)) if scored and res.accuracy is not None else None
    out = {"task": cfg.task, "split": cfg.split, "workflow": name, "accuracy": res.accuracy, "ci95": ci,
           "n": len(items), "n_scored": len(scored), "infra_errors": res.infra_errors,
           "workflow_errors": res.workflow_errors, "usage": res.usage, "cost": res.usage.get("cost_usd", 0.0),
           "wall_s": res.wall_s, "note": res.note,
           "records": [{**r.as_dict(), "question": it.question} for r, it in zip(res.records, items)],
           "config": cfg.to_dict()}
    path = os.path.join(cfg.workdir, "eval.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, default=str)
    os.replace(tmp, path)
    out["path"] = path
    return out


def summary_line(out: dict) -> str:
    head = f"{out['task']}/{out['split']} {os.path.basename(out['workflow'])}"
    if out["accuracy"] is None:
        return (f"{head}: accuracy not measured ({out['infra_errors']} of {out['n']} items hit infrastructure "
                f"errors); records in {out['path']}")
    lo, hi = out["ci95"]
    return (f"{head}: accuracy {out['accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}), n={out['n']}, "
            f"cost ${out['cost']:.4f}; wrote {out['path']}")

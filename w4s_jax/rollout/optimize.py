"""Optimise one task's workflow with a meta-agent: T turns on the task's valid split, then the workflow
chosen by validation accuracy is scored on the test split, once.

The search never sees a test item (no prompt, no executor call); the test evaluation happens after it,
is stored in the workdir and reused by a rerun, so a workflow is never re-scored until it looks better.
Writes <workdir>/best_workflow.py, trajectories.jsonl, test_eval.json and summary.json
({label: {"best_valid_acc_per_turn": [...], "test_acc": ..., ...}}, DESIGN.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time

from ..trajectories import Record, TrajectoryWriter, read_file
from .env import Environment, Episode, TurnInfraError
from .pool import WorkerPool
from .runinfo import check_resume, write_json_atomic, write_run_info
from .service import (CollectionError, env_config, load_examples, load_tasks, make_executor, make_meta_agent,
                      rebuild_history, run_episodes, sample_items)
from .stats import bootstrap_ci


def best_so_far_curve(examples: list[dict], records: list[Record], turns: int) -> list[float]:
    """Best validation accuracy known after each turn (examples included), over every candidate."""
    best = max([e["valid_acc"] for e in examples if e["valid_acc"] is not None], default=0.0)
    curve = []
    for t in range(turns):
        rs = [r for r in records if r.turn == t]
        if not rs:
            break
        best = max([best] + [r.valid_acc for r in rs if r.status == "ok" and r.valid_acc is not None])
        curve.append(best)
    return curve


def pick_best(examples: list[dict], records: list[Record]) -> dict:
    """The workflow with the highest validation accuracy; ties go to the earliest (examples first)."""
    best = None
    for e in examples:
        if e["valid_acc"] is not None and (best is None or e["valid_acc"] > best["valid_acc"]):
            best = {"source": f"example {e['name']}", "code": e["code"], "valid_acc": e["valid_acc"]}
    for r in sorted(records, key=lambda r: (r.episode_id, r.turn, r.candidate)):
        if r.status == "ok" and r.valid_acc is not None and (best is None or r.valid_acc > best["valid_acc"]):
            best = {"source": f"{r.episode_id} turn {r.turn} candidate {r.candidate}", "code": r.meta["code"],
                    "valid_acc": r.valid_acc}
    if best is None:
        raise CollectionError("no workflow could be measured on the validation split")
    return best


async def score_on_test(env: Environment, workdir: str, task, code: str, items: list, seed: int) -> dict:
    path = os.path.join(workdir, "test_eval.json")
    code_hash = hashlib.sha256(code.encode()).hexdigest()
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("code_sha256") == code_hash and saved.get("n") == len(items):
            return saved
    res = await env.evaluate(code, task, items)
    if res.accuracy is None:
        raise CollectionError(f"the test evaluation could not be measured ({res.infra_errors} infrastructure "
                              "errors); rerun to retry it")
    scores = [r.score for r in res.records]
    lo, hi = bootstrap_ci(scores, seed=seed)
    out = {"code_sha256": code_hash, "n": len(items), "accuracy": res.accuracy, "ci95": [lo, hi],
           "usage": res.served_usage, "records": [r.as_dict() for r in res.records]}
    write_json_atomic(path, out)
    return out


async def optimize(cfg, *, executor=None, meta_agent=None, pool: WorkerPool | None = None) -> dict:
    """Run (or resume) one optimisation. `executor`, `meta_agent` and `pool` may be shared with other
    optimisations running concurrently (then they are neither opened nor closed here)."""
    t0 = time.perf_counter()
    workdir = os.path.abspath(cfg.workdir)
    os.makedirs(workdir, exist_ok=True)
    tasks = load_tasks(cfg)
    if len(tasks) != 1:
        raise ValueError(f"optimize takes one task, got {[t.name for t in tasks]}")
    task = tasks[0]
    valid = sample_items(task.items("valid"), cfg.eval_items, cfg.seed)
    if not valid:
        raise ValueError(f"task {task.name} has no valid split to optimise on")
    run_id = check_resume(cfg, workdir)
    path = os.path.join(workdir, "trajectories.jsonl")
    writer = TrajectoryWriter(path)
    own_executor, own_meta, own_pool = executor is None, meta_agent is None, pool is None
    executor = executor or make_executor(cfg, workdir)
    meta_agent = meta_agent or make_meta_agent(cfg, workdir)
    label = cfg.label or meta_agent.model_id
    write_run_info(cfg, workdir, run_id=run_id, tasks=[task], env_items={task.name: valid}, executor=executor,
                   meta_agent=meta_agent, trajectory_path=path)
    names = [n.strip() for n in str(cfg.examples).split(",") if n.strip()]
    try:
        async with contextlib.AsyncExitStack() as stack:
            if own_executor:
                await stack.enter_async_context(executor)
            if own_pool:
                pool = await stack.enter_async_context(WorkerPool(cfg.sandbox.pool_size, sandbox=cfg.sandbox.mode))
            env = Environment(env_config(cfg), executor, meta_agent, pool)
            examples = await load_examples(env, workdir, task, valid, names)
            episodes = []
            for i in range(cfg.episodes):
                # the seed is in the name: the meta-agent's per-request seeds derive from it (see policies.py),
                # so searches under other seeds sample other workflows even from one shared server and cache
                ep = Episode(f"{task.name}-opt-s{cfg.seed}-{i:03d}", task, valid, examples,
                             seed=cfg.seed * 1_000_003 + i)
                ep.history = rebuild_history(writer.existing, ep.episode_id)
                episodes.append((ep, i))
            result = await run_episodes(env, episodes, writer, run_id, turns=cfg.turns,
                                        max_parallel=cfg.max_parallel_episodes, progress=cfg.progress)
            if result["infra_errors"]:
                raise CollectionError(f"optimisation stopped early: {result['infra_errors'][0]}; everything "
                                      "finished is kept, rerun the same command to resume")
            records = read_file(path)
            best = pick_best(examples, records)
            with open(os.path.join(workdir, "best_workflow.py"), "w") as f:
                f.write(f"# {task.name}: {best['source']}, validation accuracy {best['valid_acc']:.4f} "
                        f"on {len(valid)} items\n{best['code']}")
            # Only now, once, with the workflow chosen by validation: the test split.
            test = await score_on_test(env, workdir, task, best["code"], task.items("test"), cfg.seed)
    except TurnInfraError as e:
        raise CollectionError(f"optimisation stopped early: {e}") from None
    finally:
        writer.close()
        if own_meta:
            await meta_agent.aclose()
        if own_executor:
            executor.close_cache()
    cost = sum(r.usage.get("cost_usd", 0.0) for r in records) + sum(e.get("cost_usd", 0.0) for e in examples)
    entry = {"task": task.name, "meta_agent": meta_agent.model_id,
             "best_valid_acc_per_turn": best_so_far_curve(examples, records, cfg.turns),
             "best_valid_acc": best["valid_acc"], "best_source": best["source"], "valid_n": len(valid),
             "test_acc": test["accuracy"], "test_ci95": test["ci95"], "test_n": test["n"],
             "examples": {e["name"]: e["valid_acc"] for e in examples}, "episodes": cfg.episodes,
             "search_cost_usd": cost, "test_cost_usd": test["usage"].get("cost_usd", 0.0),
             "executor_calls": sum(r.meta.get("executor_calls") or 0 for r in records),
             "mean_reward": sum(r.reward for r in records) / max(1, len(records)),
             # the meta-agent's average workflow on these items (a failed candidate counts as 0): what its
             # policy writes, less noisy than the best of a few candidates
             "mean_candidate_valid_acc": sum(r.valid_acc or 0.0 for r in records) / max(1, len(records)),
             "candidates": len(records),
             "chosen_workflows": [r.meta.get("code") for r in records if r.chosen],
             "wall_s": time.perf_counter() - t0}
    summary = {label: entry}
    write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    return summary

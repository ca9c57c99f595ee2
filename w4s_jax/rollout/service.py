"""Collection: run W4S episodes (tasks x seeds) and write the trajectories the trainer learns from.

During collection the environment's "validation" items are a fixed, seeded sample of each task's `train`
split, so trajectories never touch the valid or test items that optimisation and reporting use. One
executor (one budget, warm connections) and one pool of started sandboxes serve every episode and turn.

Resuming: the trajectory file is the record of what is done. A rerun of the same command reads it back,
rebuilds every episode's history from its chosen candidates, and continues with the first turn not yet
written; turns are written whole (all m candidates) and fsync'ed, so a kill -9 loses at most the turn in
flight, and the replay caches in the workdir make re-running it free and identical.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass

from tqdm.auto import tqdm

from .. import tasks as tasks_registry
from ..trajectories import Record, TrajectoryWriter, make_record
from .env import Environment, EnvConfig, Episode, TurnEntry, TurnInfraError, TurnOutcome
from .executor import Executor
from .policies import ChatEndpointMetaAgent, MetaAgent, ServedPolicyMetaAgent
from .pool import WorkerPool
from .rewards import RewardConfig
from .runinfo import check_resume, write_json_atomic, write_run_info

log = logging.getLogger(__name__)


class CollectionError(RuntimeError):
    """The run stopped early (budget spent, API down); everything finished is on disk."""


def parse_shard(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def trajectory_path(workdir: str, shard: tuple[int, int]) -> str:
    i, n = shard
    name = "trajectories.jsonl" if n == 1 else f"trajectories-{i:03d}-of-{n:03d}.jsonl"
    return os.path.join(workdir, name)


def sample_items(items: list, k: int, seed: int) -> list:
    """A fixed, seeded sample of k items (all of them, in their order, when k <= 0 or k >= len)."""
    if k <= 0 or k >= len(items):
        return list(items)
    idx = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in idx]


def env_config(cfg) -> EnvConfig:
    return EnvConfig(candidates=cfg.candidates, repairs=cfg.repairs, window=cfg.window,
                     feedback_cases=cfg.feedback_cases, sandbox=cfg.sandbox.mode,
                     item_timeout_s=cfg.sandbox.item_timeout_s,
                     reward=RewardConfig(type=cfg.reward.type, low_acc_penalty=cfg.reward.low_acc_penalty,
                                         cost_lambda=cfg.reward.cost_lambda))


def make_executor(cfg, workdir: str) -> Executor:
    e = cfg.executor
    if not e.base_url:
        raise ValueError("executor.base_url is empty: give an OpenAI-compatible endpoint for the strong model")
    return Executor(e.base_url, model=e.model, api_key_env=e.api_key_env, max_concurrency=e.max_concurrency,
                    cache_path=os.path.join(workdir, "executor_cache.sqlite") if e.cache else None,
                    budget_usd=e.budget_usd or None, max_retries=e.max_retries, seed=cfg.seed)


def make_meta_agent(cfg, workdir: str) -> MetaAgent:
    m = cfg.meta_agent
    cache = os.path.join(workdir, "meta_agent_cache.sqlite") if m.cache else None
    if m.get("path"):
        if not os.path.exists(m.path):
            raise ValueError(f"meta_agent.path {m.path!r} does not exist (an HF directory, a policy export "
                             "<workdir>/policy/<step> or a trainer workdir)")
        return ServedPolicyMetaAgent(m.path, dtype=m.dtype, mesh=m.mesh, temperature=m.temperature,
                                     max_tokens=m.max_tokens, max_concurrency=m.max_concurrency,
                                     cache_path=cache, seed=cfg.seed)
    return ChatEndpointMetaAgent(m.base_url, model=m.model, api_key_env=m.api_key_env,
                                 temperature=m.temperature, max_tokens=m.max_tokens,
                                 max_concurrency=m.max_concurrency, logprobs=m.logprobs,
                                 cache_path=cache, seed=cfg.seed)


def outcome_records(run_id: str, ep: Episode, out: TurnOutcome, meta_agent_id: str) -> list[dict]:
    recs = []
    for c in out.candidates:
        served = c.result.served_usage if c.result is not None else {}
        recs.append(make_record(
            run_id=run_id, episode_id=ep.episode_id, task=ep.task.name, turn=out.turn, candidate=c.index,
            messages=out.messages, action=c.action, reward=c.reward, valid_acc=c.valid_acc,
            chosen=c.index == out.chosen, status=c.status, repairs=c.repairs, action_logprob=c.logprob,
            usage={"executor_prompt_tokens": served.get("prompt_tokens", 0),
                   "executor_completion_tokens": served.get("completion_tokens", 0),
                   "cost_usd": served.get("cost_usd", 0.0)},
            meta={"code": c.code, "feedback": c.feedback, "error": c.error, "attempts": c.attempts,
                  "executor_calls": served.get("calls", 0), "items": len(ep.items),
                  "workflow_errors": c.result.workflow_errors if c.result is not None else None,
                  "episode_seed": ep.seed, "meta_agent": c.info.get("model", meta_agent_id),
                  **({"policy_step": c.info["policy_step"]} if c.info.get("policy_step") is not None else {})}))
    return recs


def rebuild_history(records: list[Record], episode_id: str) -> list[TurnEntry]:
    """The chosen candidate of each complete turn, in order; stops at the first missing turn."""
    by_turn: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        if r.episode_id == episode_id:
            by_turn[r.turn].append(r)
    history = []
    for t in range(len(by_turn)):
        chosen = [r for r in by_turn.get(t, []) if r.chosen]
        if len(chosen) != 1:
            break
        r = chosen[0]
        history.append(TurnEntry(t, r.action, r.meta.get("code"), r.valid_acc, r.status,
                                 r.meta.get("feedback", "")))
    return history


async def load_examples(env: Environment, workdir: str, task, items: list, names: list[str]) -> list[dict]:
    """Seed workflows' accuracy on the environment's items, evaluated once per task and kept in the workdir."""
    path = os.path.join(workdir, "examples", f"{task.name}.json")
    ids = [str(it.id) for it in items]
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("item_ids") == ids and [e["name"] for e in saved["examples"]] == names:
            return saved["examples"]
    examples = await env.evaluate_examples(task, items, names)
    write_json_atomic(path, {"task": task.name, "item_ids": ids, "examples": examples})
    return examples


@dataclass
class EpisodeSpec:
    task: object
    index: int

    @property
    def episode_id(self) -> str:
        return f"{self.task.name}-{self.index:03d}"


def episode_specs(cfg, tasks: list) -> list[EpisodeSpec]:
    shard = parse_shard(cfg.shard)
    specs = [EpisodeSpec(t, i) for t in tasks for i in range(cfg.episodes)]
    return [s for k, s in enumerate(specs) if k % shard[1] == shard[0]]


def load_tasks(cfg) -> list:
    names = [n.strip() for n in str(cfg.task).split(",") if n.strip()]
    if not names:
        raise ValueError("task is empty: name one or more registered tasks (comma-separated)")
    return [tasks_registry.get(n, cfg.data_dir or None) for n in names]


async def run_episodes(env: Environment, specs_items: list[tuple[Episode, int]], writer: TrajectoryWriter,
                       run_id: str, *, turns: int, max_parallel: int, progress: bool = True) -> dict:
    """Advance every episode to `turns` turns; returns {"infra_errors": [...], "budget_exhausted": bool}."""
    total = sum(max(0, turns - ep.turn) for ep, _ in specs_items)
    bar = tqdm(total=total, desc="turns", disable=not progress, dynamic_ncols=True)
    sem = asyncio.Semaphore(max(1, max_parallel))
    problems: list[str] = []
    stop = asyncio.Event()

    async def one(ep: Episode):
        async with sem:
            while ep.turn < turns and not stop.is_set():
                try:
                    out = await env.step(ep)
                except TurnInfraError as e:
                    problems.append(f"{ep.episode_id} turn {ep.turn}: {e}")
                    if env.budget_spent():
                        stop.set()
                    return
                writer.write_turn(outcome_records(run_id, ep, out, env.meta_agent.model_id))
                env.advance(ep, out)
                bar.update(1)
                bar.set_postfix(best=f"{ep.best_acc():.2f}")

    try:
        await asyncio.gather(*(one(ep) for ep, _ in specs_items))
    finally:
        bar.close()
    return {"infra_errors": problems, "budget_exhausted": env.budget_spent()}


def summarize(records: list[Record], *, turns: int, wall_s: float, executor: Executor, meta_agent,
              extra: dict) -> dict:
    by_turn: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_turn[r.turn].append(r)
    per_turn = []
    episodes = sorted({r.episode_id for r in records})
    best_so_far = {e: 0.0 for e in episodes}
    for t in range(turns):
        rs = by_turn.get(t, [])
        if not rs:
            break
        chosen = [r for r in rs if r.chosen]
        for r in chosen:
            best_so_far[r.episode_id] = max(best_so_far[r.episode_id], r.valid_acc or 0.0)
        accs = [r.valid_acc for r in chosen if r.valid_acc is not None]
        per_turn.append({
            "turn": t, "episodes": len(chosen),
            "chosen_valid_acc": sum(accs) / len(accs) if accs else None,
            "best_valid_acc": sum(best_so_far[r.episode_id] for r in chosen) / max(1, len(chosen)),
            "mean_reward": sum(r.reward for r in rs) / len(rs),
            "failed_fraction": sum(r.status == "failed" for r in rs) / len(rs),
            "mean_repairs": sum(r.repairs for r in rs) / len(rs)})
    usage = {"executor_prompt_tokens": 0, "executor_completion_tokens": 0, "cost_usd": 0.0, "executor_calls": 0}
    for r in records:
        for k in ("executor_prompt_tokens", "executor_completion_tokens", "cost_usd"):
            usage[k] += r.usage.get(k, 0)
        usage["executor_calls"] += r.meta.get("executor_calls") or 0
    ms = getattr(meta_agent, "stats", None)
    return {
        "records": len(records), "episodes": len(episodes), "per_turn": per_turn,
        "trajectory_usage": usage,
        "this_run": {"wall_s": wall_s, "executor_calls": executor.stats.calls,
                     "executor_http_requests": executor.stats.http_requests,
                     "executor_cache_hits": executor.stats.cache_hits,
                     "executor_usage": executor.stats.usage.as_dict(), "executor_spent_usd": executor.spent_usd,
                     "meta_agent_calls": ms.calls if ms else None,
                     "meta_agent_usage": ms.usage.as_dict() if ms else None},
        **extra}


async def collect(cfg) -> dict:
    """Run (or resume) the collection the config describes; returns the summary also written to
    <workdir>/summary.json. Raises CollectionError, after writing everything finished, if it stopped early."""
    t0 = time.perf_counter()
    workdir = os.path.abspath(cfg.workdir)
    os.makedirs(workdir, exist_ok=True)
    shard = parse_shard(cfg.shard)
    tasks = load_tasks(cfg)
    env_items = {}
    for t in tasks:
        train = t.items("train")
        if not train:
            raise ValueError(f"task {t.name} has no train split: collection only uses train items (never "
                             "valid or test); collect on another task or optimise this one with launch/optimize.py")
        env_items[t.name] = sample_items(train, cfg.eval_items, cfg.seed)
    specs = episode_specs(cfg, tasks)
    run_id = check_resume(cfg, workdir)
    path = trajectory_path(workdir, shard)
    writer = TrajectoryWriter(path)
    summary_path = os.path.join(workdir, "summary.json")
    if os.path.exists(summary_path) and all(len(rebuild_history(writer.existing, s.episode_id)) >= cfg.turns
                                            for s in specs):
        writer.close()   # a finished run: nothing to start (no policy server, no sandboxes)
        with open(summary_path) as f:
            return json.load(f)
    executor = make_executor(cfg, workdir)
    meta_agent = make_meta_agent(cfg, workdir)
    write_run_info(cfg, workdir, run_id=run_id, tasks=tasks, env_items=env_items, executor=executor,
                   meta_agent=meta_agent, trajectory_path=path)
    examples_names = [n.strip() for n in str(cfg.examples).split(",") if n.strip()]
    result = {}
    try:
        async with executor, WorkerPool(cfg.sandbox.pool_size, sandbox=cfg.sandbox.mode) as pool:
            env = Environment(env_config(cfg), executor, meta_agent, pool)
            examples = {}
            for t in tasks:
                examples[t.name] = await load_examples(env, workdir, t, env_items[t.name], examples_names)
            episodes = []
            for s in specs:
                ep = Episode(s.episode_id, s.task, env_items[s.task.name], examples[s.task.name],
                             seed=cfg.seed * 1_000_003 + s.index)
                ep.history = rebuild_history(writer.existing, s.episode_id)
                episodes.append((ep, s.index))
            result = await run_episodes(env, episodes, writer, run_id, turns=cfg.turns,
                                        max_parallel=cfg.max_parallel_episodes, progress=cfg.progress)
    except TurnInfraError as e:  # the examples could not be evaluated
        result = {"infra_errors": [str(e)], "budget_exhausted": executor.spent_usd >= (executor.budget_usd or 1e300)}
    finally:
        writer.close()
        await meta_agent.aclose()
        executor.close_cache()
    from ..trajectories import read_file
    records = read_file(path)
    summary = summarize(records, turns=cfg.turns, wall_s=time.perf_counter() - t0, executor=executor,
                        meta_agent=meta_agent, extra={"run_id": run_id, "trajectories": path, "shard": cfg.shard,
                                                      "stopped_early": bool(result.get("infra_errors")),
                                                      **result})
    write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    if result.get("infra_errors"):
        why = ("the executor budget (executor.budget_usd) is spent" if result.get("budget_exhausted")
               else "infrastructure errors (not the workflows' fault)")
        raise CollectionError(f"collection stopped early: {why}; {len(records)} candidates are recorded in "
                              f"{path}; rerun the same command to resume. First problem: "
                              f"{result['infra_errors'][0]}")
    return summary

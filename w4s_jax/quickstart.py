"""The embedded default: the whole W4S loop in one command, on a laptop, with no API key and no GPU.

1. the simulated strong executor (w4s_jax.sim) starts in its own process on a free port;
2. the tiny meta-agent is built (tokenizer + SFT warm-start, w4s_jax.metaagent) or loaded from its cache;
3. iterated RLAO on the training tasks' train split (w4s_jax.rlao): collect best-of-m trajectories with the
   current policy, train, export, repeat;
4. the untrained (SFT-only) and the trained meta-agent each optimise the evaluation tasks (valid split for
   the search, test scored once at the end) over several seeds, concurrently, sharing the executor and
   the sandbox pool; each policy is served by one server for all its searches.

Writes <workdir>/summary.json ({"untrained": {...}, "trained": {...}} as DESIGN.md specifies),
<workdir>/quickstart.png (best validation accuracy per turn, both meta-agents), <workdir>/report.json
(timings, technique mix before and after, every search's result) and everything each stage writes below
it. Rerunning reuses the cached meta-agent and resumes every stage.
"""
from __future__ import annotations

import asyncio
import copy
import math
import os
import shutil
import statistics
import time
from collections import Counter

from .rlao import rlao
from .rollout.executor import Executor
from .rollout.optimize import optimize
from .rollout.policies import ServedPolicyMetaAgent
from .rollout.pool import WorkerPool
from .rollout.runinfo import write_json_atomic, write_text_atomic
from .sim.process import ServerProcess

LABELS = ("untrained", "trained")


class QuickstartError(ValueError):
    """A prerequisite is missing; the message says how to get it."""


def check_prerequisites(cfg) -> None:
    modes = [cfg.search.sandbox.mode] + [cfg[k].sandbox.mode for k in ("collect",) if k in cfg]
    if "rlao" in cfg:
        modes.append(cfg.rlao.collect.sandbox.mode)
    if "bwrap" in modes and shutil.which("bwrap") is None:
        raise QuickstartError("bubblewrap is not installed; the workflows the meta-agent writes run only inside "
                              "its sandbox. Install it: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
                              "`sudo dnf install bubblewrap` (Fedora), then rerun the same command.")


def build_meta_agent(cfg) -> str:
    if cfg.meta_agent_path:
        if not os.path.exists(cfg.meta_agent_path):
            raise QuickstartError(f"meta_agent_path {cfg.meta_agent_path!r} does not exist")
        return cfg.meta_agent_path
    from .metaagent.build import build_or_load

    return build_or_load(cfg.meta_agent, cache_dir=cfg.cache_dir or None)


class _Endpoint:
    """An executor endpoint given in the config: nothing to start or stop."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def executor_endpoint(base_url: str, sim_tasks: str, *, seed: int = 0, latency_s: float = 0.0):
    """A context manager yielding an object with `base_url`: the given endpoint, or (when `base_url` is
    empty) the simulated strong executor for `sim_tasks`, started in its own process on a free port."""
    if base_url:
        return _Endpoint(base_url)
    return ServerProcess("w4s_jax.sim", ["--simulate", sim_tasks, "--seed", str(seed), "--latency_s", str(latency_s)])


def rlao_config(cfg, policy: str, executor_url: str):
    r = copy.deepcopy(cfg.rlao)
    r.unlock()
    r.workdir = os.path.join(cfg.workdir, "rlao")
    r.seed = cfg.seed
    r.initial_policy = policy
    r.progress = cfg.progress
    r.collect.task = cfg.train_tasks
    r.collect.seed = cfg.seed
    r.collect.progress = cfg.progress
    r.collect.executor.base_url, r.collect.executor.model = executor_url, cfg.executor_model
    r.collect.executor.api_key_env = cfg.executor_api_key_env
    r.train.model.path = policy
    return r


def search_config(cfg, label: str, task: str, seed: int):
    o = copy.deepcopy(cfg.search)
    o.unlock()
    o.workdir = os.path.join(cfg.workdir, "search", label, task, f"seed-{seed}")
    o.task, o.seed, o.label, o.progress = task, seed, label, False
    return o


async def _search_all(cfg, policies: dict[str, str], executor_url: str) -> dict[str, list[dict]]:
    """Every (meta-agent, task, seed) search at once: one executor, one sandbox pool, one server per policy."""
    tasks = [t.strip() for t in cfg.eval_tasks.split(",") if t.strip()]
    ex = Executor(executor_url, model=cfg.executor_model, api_key_env=cfg.executor_api_key_env,
                  max_concurrency=cfg.search.executor.max_concurrency,
                  cache_path=os.path.join(cfg.workdir, "search", "executor_cache.sqlite"), seed=cfg.seed)
    metas = {}
    try:
        for label, policy in policies.items():
            metas[label] = ServedPolicyMetaAgent(
                policy, temperature=cfg.search.meta_agent.temperature, max_tokens=cfg.search.meta_agent.max_tokens,
                cache_path=os.path.join(cfg.workdir, "search", label, "meta_agent_cache.sqlite"), seed=cfg.seed)
        async with ex, WorkerPool(cfg.search.sandbox.pool_size, sandbox=cfg.search.sandbox.mode) as pool:
            jobs = {(label, task, s): optimize(search_config(cfg, label, task, cfg.seed + s), executor=ex,
                                               meta_agent=metas[label], pool=pool)
                    for label in policies for task in tasks for s in range(cfg.eval_seeds)}
            done = await asyncio.gather(*jobs.values())
    finally:
        for m in metas.values():
            await m.aclose()
        ex.close_cache()
    out: dict[str, list[dict]] = {label: [] for label in policies}
    for (label, task, s), summary in zip(jobs, done):
        out[label].append({"task": task, "seed": cfg.seed + s, **summary[label]})
    return out


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a t-interval over seeds (0 for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, 0.0
    t975 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57}.get(len(values), 1.96)
    return m, t975 * statistics.stdev(values) / math.sqrt(len(values))


def technique_mix(codes: list[str | None]) -> dict:
    """Fractions of workflows by technique and by each knob value (`describe` reads them from the code);
    `None` stands for a reply with no usable workflow."""
    from .metaagent.describe import describe

    counts: Counter = Counter()
    n = len(codes)
    for code in codes:
        if not code:
            counts["no workflow"] += 1
            continue
        for k, v in describe(code).items():
            if isinstance(v, bool):
                counts[k] += int(v)
            elif isinstance(v, (str, int, float)):
                counts[f"{k}={v}"] += 1
    return {"workflows": n, "fractions": {k: round(c / max(1, n), 3) for k, c in sorted(counts.items())}}


def search_mix(workdir: str, label: str) -> dict:
    """The technique mix of every candidate a meta-agent wrote in its searches (what its policy samples),
    and of the candidates chosen at each turn."""
    import glob

    from .rollout.actions import ActionParseError, extract_workflow
    from .trajectories import read_file

    every, chosen = [], []
    for path in sorted(glob.glob(os.path.join(workdir, "search", label, "*", "seed-*", "trajectories.jsonl"))):
        for rec in read_file(path):
            try:
                code = rec.meta.get("code") or extract_workflow(rec.action)
            except ActionParseError:
                code = None
            every.append(code)
            if rec.chosen:
                chosen.append(code)
    return {"all": technique_mix(every), "chosen": technique_mix(chosen)}


def mix_table(mixes: dict[str, dict]) -> str:
    """Techniques and the shared knobs, one row each, a column per meta-agent (fractions of all candidates)."""
    from .metaagent.space import SHARED_KNOBS, TECHNIQUES

    rows = [f"technique={t}" for t in TECHNIQUES] + ["no workflow"]
    rows += [f"{k}={v}" if not isinstance(v, bool) else k for k, vals in SHARED_KNOBS.items() for v in vals if v is not False]
    labels = list(mixes)
    out = ["candidates".ljust(30) + "".join(f"{lab:>12}" for lab in labels),
           "(all written in the searches)".ljust(30) + "".join(f"{mixes[lab]['all']['workflows']:>12}" for lab in labels)]
    for row in rows:
        out.append(row.ljust(30) + "".join(f"{mixes[lab]['all']['fractions'].get(row, 0.0):>12.2f}" for lab in labels))
    return "\n".join(out)


def aggregate(runs: list[dict], turns: int) -> dict:
    curves = [r["best_valid_acc_per_turn"] + [r["best_valid_acc_per_turn"][-1]] * (turns - len(r["best_valid_acc_per_turn"]))
              for r in runs if r["best_valid_acc_per_turn"]]
    per_turn = [statistics.fmean(c[t] for c in curves) for t in range(turns)] if curves else []
    test, half = _mean_ci([r["test_acc"] for r in runs])
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r["seed"], []).append(r["test_acc"])
    seed_means = [statistics.fmean(v) for v in by_seed.values()]
    _, seed_half = _mean_ci(seed_means)
    cand_by_seed: dict = {}
    for r in runs:
        cand_by_seed.setdefault(r["seed"], []).append(r["mean_candidate_valid_acc"])
    cand_seed_means = [statistics.fmean(v) for v in cand_by_seed.values()]
    cand, cand_half = _mean_ci(cand_seed_means)
    return {"best_valid_acc_per_turn": per_turn, "test_acc": test, "test_ci95": [test - seed_half, test + seed_half],
            "mean_candidate_valid_acc": cand, "mean_candidate_valid_acc_ci95": [cand - cand_half, cand + cand_half],
            "mean_candidate_valid_acc_per_seed": {str(k): statistics.fmean(v) for k, v in sorted(cand_by_seed.items())},
            "test_acc_per_seed": {str(k): statistics.fmean(v) for k, v in sorted(by_seed.items())},
            "test_acc_per_task": {t: statistics.fmean(r["test_acc"] for r in runs if r["task"] == t)
                                  for t in sorted({r["task"] for r in runs})},
            "mean_reward": statistics.fmean(r["mean_reward"] for r in runs),
            "executor_calls": sum(r["executor_calls"] for r in runs),
            "simulated_cost_usd": sum(r["search_cost_usd"] + r["test_cost_usd"] for r in runs),
            "runs": len(runs), "items_valid": runs[0]["valid_n"], "items_test": runs[0]["test_n"]}


def table(summary: dict, first_column: str = "meta-agent") -> str:
    lines = []
    turns = max(len(v["best_valid_acc_per_turn"]) for v in summary.values())
    head = first_column.ljust(11) + "".join(f" turn{t + 1:>2}" for t in range(turns))
    lines.append(head + "   test acc (95% CI)      mean candidate (95% CI)   mean reward   executor calls   cost")
    for label, v in summary.items():
        curve = "".join(f" {a:6.3f}" for a in v["best_valid_acc_per_turn"])
        lo, hi = v["test_ci95"]
        clo, chi = v["mean_candidate_valid_acc_ci95"]
        lines.append(f"{label:<11}{curve}   {v['test_acc']:.3f} [{lo:.3f}, {hi:.3f}]   "
                     f"{v['mean_candidate_valid_acc']:.3f} [{clo:.3f}, {chi:.3f}]      {v['mean_reward']:>8.3f}"
                     f"   {v['executor_calls']:>14}   ${v['simulated_cost_usd']:.4f}")
    lines.append("(best validation accuracy so far per turn; the chosen workflow's test accuracy; the mean validation "
                 "accuracy of every candidate written; intervals over seeds)")
    return "\n".join(lines)


def plot(summary: dict, path: str) -> None:
    """Left: mean best validation accuracy per turn; right: test accuracy of each seed (dots) and the mean
    with its 95% interval over seeds, one column per meta-agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for k, (label, v) in enumerate(summary.items()):
        turns = list(range(1, len(v["best_valid_acc_per_turn"]) + 1))
        left.plot(turns, v["best_valid_acc_per_turn"], marker="o", label=label, color=f"C{k}")
        seeds = list(v["test_acc_per_seed"].values())
        right.scatter([k] * len(seeds), seeds, color=f"C{k}", alpha=0.6, zorder=3)
        lo, hi = v["test_ci95"]
        right.errorbar([k + 0.15], [v["test_acc"]], yerr=[[v["test_acc"] - lo], [hi - v["test_acc"]]],
                       fmt="s", color=f"C{k}", capsize=4)
    left.set(xlabel="turn", ylabel="best validation accuracy", title="held-out search (mean over tasks, seeds)")
    left.set_xticks(turns)
    left.legend()
    right.set_xticks(range(len(summary)), list(summary))
    right.set(ylabel="test accuracy", title="test: seeds (dots), mean and 95% CI", xlim=(-0.5, len(summary) - 0.3))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quickstart(cfg) -> dict:
    check_prerequisites(cfg)
    workdir = os.path.abspath(cfg.workdir)
    cfg = copy.deepcopy(cfg)
    cfg.unlock()
    cfg.workdir = workdir
    os.makedirs(workdir, exist_ok=True)
    # every JAX process of the run (policy servers, training rounds) shares compiled programs, across reruns too
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(workdir, "xla_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    timings = {}
    t = time.perf_counter()
    initial = build_meta_agent(cfg)
    timings["meta_agent_build_s"] = time.perf_counter() - t
    sim_tasks = ",".join(dict.fromkeys(x.strip() for x in f"{cfg.train_tasks},{cfg.eval_tasks}".split(",") if x.strip()))
    with executor_endpoint(cfg.executor_base_url, sim_tasks, seed=cfg.seed, latency_s=cfg.executor_latency_s) as sim:
        t = time.perf_counter()
        loop = rlao(rlao_config(cfg, initial, sim.base_url))
        timings["rlao_s"] = time.perf_counter() - t
        timings["rlao_rounds"] = [{k: r.get(k) for k in ("round", "collect_s", "train_s")} for r in loop["rounds"]]
        t = time.perf_counter()
        runs = asyncio.run(_search_all(cfg, {"untrained": initial, "trained": loop["final_policy"]}, sim.base_url))
        timings["search_s"] = time.perf_counter() - t
    summary = {label: aggregate(runs[label], cfg.search.turns) for label in LABELS}
    report = {"timings": timings, "policies": {"untrained": initial, "trained": loop["final_policy"]},
              "rlao": loop, "runs": {k: [{kk: vv for kk, vv in r.items() if kk != "chosen_workflows"} for r in v]
                                     for k, v in runs.items()},
              "technique_mix": {label: search_mix(workdir, label) for label in LABELS}}
    write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    write_json_atomic(os.path.join(workdir, "report.json"), report)
    write_text_atomic(os.path.join(workdir, "table.txt"), table(summary) + "\n")
    plot(summary, os.path.join(workdir, "quickstart.png"))
    return {"summary": summary, "report": report}

"""Compare RL objectives on the same trajectories: train one meta-agent per objective (rwr, sft, awr, dpo and
any objective registered later) from the same starting policy, then let each optimise the same held-out
tasks over several seeds, and report means with intervals.

    <workdir>/collect/             the trajectories (collected here with the starting policy, or given)
    <workdir>/train/<objective>/   one trainer workdir per objective (resumable)
    <workdir>/search/<objective>/  the searches; <workdir>/compare.json, compare.png
"""
from __future__ import annotations

import asyncio
import copy
import os
import time

from .quickstart import _search_all, aggregate, check_prerequisites, executor_endpoint, table
from .rlao import run_training
from .rollout.runinfo import write_json_atomic, write_text_atomic
from .rollout.service import collect


def objective_names(cfg) -> list[str]:
    from .train import objectives

    names = [n.strip() for n in cfg.objectives.split(",") if n.strip()] or objectives.names()
    for n in names:
        objectives.get(n)  # unknown names fail here, with the known ones listed
    return names


def train_config(cfg, objective: str, data_path: str) -> dict:
    t = copy.deepcopy(cfg.train).to_dict()
    t["workdir"] = os.path.join(cfg.workdir, "train", objective)
    t["objective"]["name"] = objective
    t["data"]["path"] = data_path
    t["data"]["synthetic"] = False
    t["model"]["path"] = t["model"]["path"] or cfg.initial_policy
    t["progress"] = bool(cfg.progress)
    return t


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    names = list(summary)
    accs = [summary[n]["test_acc"] for n in names]
    errs = [(summary[n]["test_acc"] - summary[n]["test_ci95"][0]) for n in names]
    axes[0].bar(names, accs, yerr=errs, capsize=4)
    axes[0].set(title="test accuracy (95% CI over seeds)", ylim=(0, 1))
    for n in names:
        axes[1].plot(range(1, len(summary[n]["best_valid_acc_per_turn"]) + 1), summary[n]["best_valid_acc_per_turn"],
                     marker="o", label=n)
    axes[1].set(title="best validation accuracy", xlabel="turn")
    axes[1].set_xticks(range(1, max(len(summary[n]["best_valid_acc_per_turn"]) for n in names) + 1))
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare_objectives(cfg) -> dict:
    check_prerequisites(cfg)
    cfg = copy.deepcopy(cfg)
    cfg.unlock()
    cfg.workdir = os.path.abspath(cfg.workdir)
    os.makedirs(cfg.workdir, exist_ok=True)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(cfg.workdir, "xla_cache"))
    names = objective_names(cfg)
    if not cfg.initial_policy:
        from .quickstart import build_meta_agent

        cfg.initial_policy = build_meta_agent(cfg)
    timings = {}
    with executor_endpoint("" if cfg.sim_tasks else cfg.search.executor.base_url, cfg.sim_tasks,
                           seed=cfg.seed) as executor:
        data = cfg.data_path
        if not data:
            t = time.perf_counter()
            c = copy.deepcopy(cfg.collect)
            c.unlock()
            c.workdir = os.path.join(cfg.workdir, "collect")
            c.meta_agent.path = cfg.initial_policy
            c.executor.base_url, c.executor.model = executor.base_url, cfg.executor_model
            c.executor.api_key_env = cfg.executor_api_key_env
            c.progress = cfg.progress
            asyncio.run(collect(c))
            data = os.path.join(c.workdir, "trajectories*.jsonl")
            timings["collect_s"] = time.perf_counter() - t
        t = time.perf_counter()
        policies = {}
        for name in names:
            tc = train_config(cfg, name, data)
            policy = os.path.join(tc["workdir"], "policy", str(tc["total_steps"]))
            if not os.path.isdir(policy):
                run_training(tc, tc["total_steps"])
            policies[name] = policy
        timings["train_s"] = time.perf_counter() - t
        t = time.perf_counter()
        search = copy.deepcopy(cfg)
        search.search.executor.base_url = executor.base_url
        runs = asyncio.run(_search_all(search, policies, executor.base_url))
        timings["search_s"] = time.perf_counter() - t
    summary = {name: aggregate(runs[name], cfg.search.turns) for name in names}
    out = {"objectives": summary, "data": data, "initial_policy": cfg.initial_policy, "timings": timings,
           "seeds": cfg.eval_seeds, "tasks": cfg.eval_tasks}
    write_json_atomic(os.path.join(cfg.workdir, "compare.json"), out)
    write_text_atomic(os.path.join(cfg.workdir, "table.txt"), table(summary, first_column="objective") + "\n")
    plot(summary, os.path.join(cfg.workdir, "compare.png"))
    return out


__all__ = ["compare_objectives", "table"]

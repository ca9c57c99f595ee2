"""Iterated RLAO: R rounds of collect (with the current policy) -> train (continuing one train state) ->
export -> the next round samples from the new policy step. Everything lives below one workdir:

    <workdir>/round-00/collect/   trajectories.jsonl, summary.json, caches (round 0: the initial policy)
    <workdir>/round-01/collect/   ... (sampled from <workdir>/train/policy/<steps_per_round>)
    <workdir>/train/              one trainer workdir: checkpoints, metrics, policy/<step> after each round
    <workdir>/rlao_summary.json   per round: reward and validation accuracy of chosen candidates, calls,
                                  cost, time; rlao.png plots them; tb/ holds the same for TensorBoard

Resumable at any point: each stage resumes by itself (collection without duplicates, training exactly from
its checkpoints), and a round counts as done once its policy export exists. Training runs in a fresh
process each round, so accelerator memory is free again for the policy server the next collection starts.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import multiprocessing
import os
import time

from .rollout.runinfo import write_json_atomic
from .rollout.service import collect

log = logging.getLogger(__name__)


def round_dir(workdir: str, r: int) -> str:
    return os.path.join(workdir, f"round-{r:02d}")


def policy_dir(workdir: str, r: int, steps_per_round: int) -> str:
    """The policy written at the end of round r's training."""
    return os.path.join(workdir, "train", "policy", str((r + 1) * steps_per_round))


def _die_with_parent() -> None:
    """A killed rlao process must not leave its training child writing checkpoints behind a rerun."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _train_child(cfg_dict: dict, target_step: int) -> None:
    _die_with_parent()
    import ml_collections

    from w4s_jax.train.checkpointing import Checkpointer
    from w4s_jax.train.trainer import train

    cfg = ml_collections.ConfigDict(cfg_dict)
    latest = Checkpointer(os.path.join(cfg.workdir, "checkpoints"), interval=cfg.checkpoint.interval,
                          keep=cfg.checkpoint.keep).latest_step() or 0
    cfg.stop_after = max(0, target_step - latest)
    if cfg.stop_after:
        train(cfg)


def run_training(cfg_dict: dict, target_step: int) -> None:
    """Train up to `target_step` in a fresh process (its accelerator memory is freed when it exits)."""
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_train_child, args=(cfg_dict, target_step), name="rlao-train")
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"training for round up to step {target_step} failed (exit status {p.exitcode}); "
                           f"see the log above; rerun the same command to resume")


def round_collect_config(cfg, r: int, policy: str):
    c = copy.deepcopy(cfg.collect)
    c.unlock()
    c.workdir = os.path.join(round_dir(cfg.workdir, r), "collect")
    c.seed = cfg.collect.seed + r          # new episodes every round
    c.meta_agent.path = policy
    # named by the round, not by the policy's path (which differs between workdirs of the same run)
    c.run_id = c.run_id or f"rlao-round-{r:02d}-seed-{c.seed}"
    return c


def round_train_config(cfg, r: int) -> dict:
    t = copy.deepcopy(cfg.train).to_dict()
    t["workdir"] = os.path.join(cfg.workdir, "train")
    t["total_steps"] = cfg.rounds * cfg.steps_per_round
    t["policy_every"] = cfg.steps_per_round
    t["stop_after"] = 0
    t["progress"] = bool(cfg.progress)
    t["data"]["synthetic"] = False
    if not t["model"]["path"]:    # train the policy that collected round 0, not a fresh init
        t["model"]["path"] = cfg.initial_policy
    first = 0 if cfg.train_on == "all" else r
    t["data"]["path"] = [os.path.join(round_dir(cfg.workdir, k), "collect", "trajectories.jsonl")
                         for k in range(first, r + 1)]
    return t


def _round_summary(r: int, policy: str, summary: dict, wall_s: float) -> dict:
    per_turn = summary.get("per_turn", [])
    usage = summary.get("trajectory_usage", {})
    return {"round": r, "policy": policy, "records": summary.get("records"),
            "chosen_valid_acc": [p["chosen_valid_acc"] for p in per_turn],
            "best_valid_acc": [p["best_valid_acc"] for p in per_turn],
            "mean_reward": [p["mean_reward"] for p in per_turn],
            "failed_fraction": [p["failed_fraction"] for p in per_turn],
            "executor_calls": usage.get("executor_calls"), "cost_usd": usage.get("cost_usd"),
            "wall_s": wall_s}


def plot(rounds: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    xs = [r["round"] for r in rounds]
    mean = lambda v: sum(x for x in v if x is not None) / max(1, sum(x is not None for x in v))  # noqa: E731
    axes[0].plot(xs, [mean(r["mean_reward"]) for r in rounds], marker="o")
    axes[0].set(title="mean reward of candidates", xlabel="round")
    axes[1].plot(xs, [r["best_valid_acc"][-1] if r["best_valid_acc"] else 0 for r in rounds], marker="o",
                 label="best after last turn")
    axes[1].plot(xs, [mean(r["chosen_valid_acc"]) for r in rounds], marker="s", label="chosen, mean over turns")
    axes[1].set(title="validation accuracy (collection items)", xlabel="round")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tensorboard(workdir: str, rounds: list[dict]) -> None:
    from tensorboardX import SummaryWriter

    with SummaryWriter(os.path.join(workdir, "tb")) as w:
        for r in rounds:
            rw = [x for x in r["mean_reward"] if x is not None]
            w.add_scalar("rlao/mean_reward", sum(rw) / max(1, len(rw)), r["round"])
            if r["best_valid_acc"]:
                w.add_scalar("rlao/best_valid_acc", r["best_valid_acc"][-1], r["round"])
            w.add_scalar("rlao/cost_usd", r["cost_usd"] or 0.0, r["round"])


def rlao(cfg) -> dict:
    """Run (or resume) all rounds; returns the summary written to <workdir>/rlao_summary.json."""
    if cfg.rounds < 1 or cfg.steps_per_round < 1:
        raise ValueError("rounds and steps_per_round must be >= 1")
    if cfg.train_on not in ("all", "last"):
        raise ValueError(f"train_on must be 'all' or 'last', got {cfg.train_on!r}")
    initial = cfg.initial_policy or cfg.train.model.path
    if not initial or not os.path.exists(initial):
        raise ValueError(f"initial_policy {initial!r}: give the starting meta-agent (an HF directory or a "
                         "policy export) as initial_policy or train.model.path")
    workdir = os.path.abspath(cfg.workdir)
    cfg = copy.deepcopy(cfg)
    cfg.unlock()
    cfg.workdir = workdir
    os.makedirs(workdir, exist_ok=True)
    rounds = []
    for r in range(cfg.rounds):
        t0 = time.perf_counter()
        policy = initial if r == 0 else policy_dir(workdir, r - 1, cfg.steps_per_round)
        summary = asyncio.run(collect(round_collect_config(cfg, r, policy)))
        t_collect = time.perf_counter() - t0
        target = (r + 1) * cfg.steps_per_round
        if not os.path.isdir(policy_dir(workdir, r, cfg.steps_per_round)):
            run_training(round_train_config(cfg, r), target)
        if not os.path.isdir(policy_dir(workdir, r, cfg.steps_per_round)):
            raise RuntimeError(f"round {r}: training ended without writing {policy_dir(workdir, r, cfg.steps_per_round)}")
        rounds.append(_round_summary(r, policy, summary, time.perf_counter() - t0))
        rounds[-1].update(collect_s=t_collect, train_s=time.perf_counter() - t0 - t_collect)
        out = {"rounds": rounds, "final_policy": policy_dir(workdir, r, cfg.steps_per_round)}
        write_json_atomic(os.path.join(workdir, "rlao_summary.json"), out)
        plot(rounds, os.path.join(workdir, "rlao.png"))
    _tensorboard(workdir, rounds)
    return out

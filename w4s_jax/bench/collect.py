"""Collection speed: one W4S turn of m candidates costs about its slowest candidate, not their sum; and the
collector's own CPU per candidate outside evaluation (prompting, parsing, feedback, writing).

The executor is the simulated server in its own process with a fixed latency; candidate j's workflow makes
j + 1 sequential executor calls per item, so the candidates' durations differ and the turn's floor is the
slowest one (its self-check plus its full evaluation). Each candidate's span is timed inside the turn.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time

from w4s_jax.rollout import WorkerPool
from w4s_jax.rollout.actions import extract_workflow
from w4s_jax.rollout.env import Environment, EnvConfig, Episode
from w4s_jax.rollout.executor import Executor
from w4s_jax.rollout.policies import ChatEndpointMetaAgent
from w4s_jax.rollout.service import outcome_records
from w4s_jax.sim import SimServer
from w4s_jax.sim.process import SimProcess
from w4s_jax.tasks import Item, SplitTask
from w4s_jax.trajectories import TrajectoryWriter

from .config import write_results
from .timing import LoadWatch, spread


def _workflow(calls: int) -> str:
    return ("def solver(agent, task):\n    reply = ''\n"
            f"    for _ in range({calls}):\n"
            "        reply = agent.call_llm(messages=[{'role': 'user', 'content': task}], temperature=0.0)[0]\n"
            "    return {'answer': reply.split()[-1].rstrip('.')}\n")


def _task(items: int) -> SplitTask:
    its = [Item(f"q{k}", f"Question {k}: what is 3 + 4?", "7") for k in range(items)]
    return SplitTask("bench_sum", "Add the numbers; answer with the number only.", {"train": its, "valid": its},
                     lambda p, it: float(str(p.get("answer") if isinstance(p, dict) else p) == it.answer),
                     workflows={"cot": _workflow(1)})


class _TimedEnvironment(Environment):
    """Records each candidate's span (self-check, repairs and full evaluation) within the turn."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.spans: list[float] = []

    async def _candidate(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return await super()._candidate(*a, **kw)
        finally:
            self.spans.append(time.perf_counter() - t0)


def _meta_reply(body: dict, choice: int) -> str:
    return f"Candidate {choice}: {choice + 1} call(s) per item.\n\n```python\n{_workflow(choice + 1)}```\n"


async def _turns(base_url: str, meta_url: str, *, candidates: int, items: int, reps: int) -> dict:
    task = _task(items)
    cfg = EnvConfig(candidates=candidates, repairs=0, window=3)
    ex = Executor(base_url, model="sim", max_concurrency=256)
    meta = ChatEndpointMetaAgent(meta_url, model="bench-meta")
    ratios, turn_s, slowest_s, cpu_outside = [], [], [], []
    async with ex, WorkerPool(size=candidates * 2) as pool:
        env = _TimedEnvironment(cfg, ex, meta, pool)
        examples = await env.evaluate_examples(task, task.items("train"), ["cot"])
        for rep in range(reps + 1):
            ep = Episode(f"bench-{rep}", task, task.items("train"), examples, seed=rep)
            env.spans = []
            t0 = time.perf_counter()
            out = await env.step(ep)
            wall = time.perf_counter() - t0
            if rep == 0:
                continue  # warm-up: connections and the pool
            ratios.append(wall / max(env.spans))
            turn_s.append(wall)
            slowest_s.append(max(env.spans))
            cpu_outside.append(_cpu_outside(env, ep, out))
    await meta.aclose()
    return {"turn_over_slowest": spread(ratios), "turn_s": spread(turn_s), "slowest_candidate_s": spread(slowest_s),
            "collector_cpu_ms_per_candidate": spread(cpu_outside)}


def _cpu_outside(env: Environment, ep: Episode, out, repeat: int = 20) -> float:
    """CPU ms per candidate for what the collector itself does around evaluation: render the state, parse
    the action, write the feedback, build the records and append them (with fsync) to a trajectory file."""
    with tempfile.TemporaryDirectory() as d:
        writer = TrajectoryWriter(os.path.join(d, "t.jsonl"))
        t0 = time.process_time()
        for r in range(repeat):
            ep.state(env.cfg.window)
            for c in out.candidates:
                extract_workflow(c.action)
                env._feedback(ep, c)
            recs = outcome_records("bench", ep, out, "bench-meta")
            for rec in recs:
                rec["turn"] = r
            writer.write_turn(recs)
        cpu = time.process_time() - t0
        writer.close()
    return 1000 * cpu / (repeat * len(out.candidates))


def run(*, latency_s: float = 0.2, candidates: int = 5, items: int = 32, reps: int = 3) -> dict:
    watch = LoadWatch()
    meta = SimServer(_meta_reply).start()
    try:
        with SimProcess(latency_s=latency_s, reply="The answer is 7.") as sim:
            res = asyncio.run(_turns(sim.base_url, meta.base_url, candidates=candidates, items=items, reps=reps))
    finally:
        meta.stop()
    # the slowest candidate makes m sequential calls per item: m for its self-check, then m for its items
    res["slowest_candidate_floor_s"] = 2 * candidates * latency_s
    res["load"] = watch.finish()
    return res


def main(config) -> None:
    write_results(config, run(latency_s=config.latency_s, candidates=config.candidates, items=config.n_items,
                              reps=config.reps))

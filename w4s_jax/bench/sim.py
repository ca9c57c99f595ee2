"""Simulated-executor speed (launch/bench_sim.py): server CPU per request and per completion of the simulated
strong model (`--simulate`) against the scripted server (`--reply`, what the rollout tests and benchmarks
used before it), all serving the same recorded requests in the same run; the scripted server also with
a reply as long as the model's average, to tell the cost of longer replies from the model's own work.

The requests are those the seed workflows of the task send for `items` items (recorded by running the
workflows in this process against the model, code execution included), so the mix of call kinds (solve,
5- and 3-sample votes, reviews, revisions, debate rounds, routing, code) is what an evaluation sends.
Each server runs in its own process; its CPU is read from /proc, so the client's is not counted. Every
repetition starts each server afresh and sends it all requests twice: the first pass is what a new
server pays (the model profiles each item on first sight, once per process), the second the steady state.
"""
from __future__ import annotations

import asyncio
import json
import os
import time

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import fmt_spread, spread
from w4s_jax.sim.process import SimProcess

SCRIPTED_REPLY = "The answer is 7"


def record_requests(task_name: str, items: int, split: str = "valid", data_dir: str | None = None
                    ) -> tuple[list[dict], list[str]]:
    """The chat requests the task's seed workflows send for its first `items` items of `split`, and the
    simulated model's replies (one per completion)."""
    from w4s_jax.rollout.agent_api import Agent
    from w4s_jax.sim import SimulatedModel
    from w4s_jax.tasks import get
    task = get(task_name, data_dir)
    model = SimulatedModel.for_task(task)
    bodies: list[dict] = []
    replies: list[str] = []

    class Recorder:
        def call(self, req):
            body = {"model": "sim-strong", "messages": req["messages"], "temperature": req["temperature"],
                    "max_completion_tokens": req["max_completion_tokens"], "n": req["n"]}
            if req["response_format"] == "json_object":
                body["response_format"] = {"type": "json_object"}
            bodies.append(body)
            out = model.complete(body)
            replies.extend(out)
            return out

        def execute(self, code, timeout):
            # Only programs the model itself just wrote (reference solutions and their mutations) run here.
            ns: dict = {}
            exec(compile(code, "<sim solution>", "exec"), ns)  # noqa: S102
            return ns["solution"]()

    agent = Agent(Recorder())
    for it in task.items(split)[:items]:
        for src in task.seed_workflows().values():
            ns: dict = {}
            exec(compile(src, "<seed workflow>", "exec"), ns)  # noqa: S102 - our own seed workflows
            ns["solver"](agent, it.question)
    return bodies, replies


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _post_all(base_url: str, payloads: list[bytes], concurrency: int) -> None:
    import aiohttp
    sem = asyncio.Semaphore(concurrency)
    url = base_url + "/chat/completions"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(p):
            async with sem:
                async with s.post(url, data=p, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"bench: HTTP {r.status} from {base_url}")
        await asyncio.gather(*[one(p) for p in payloads])


def _server_ms(srv: SimProcess, payloads: list[bytes], concurrency: int) -> float:
    c0 = _proc_cpu(srv.proc.pid)
    asyncio.run(_post_all(srv.base_url, payloads, concurrency))
    return 1000 * (_proc_cpu(srv.proc.pid) - c0)


def run(*, task: str = "synth_arith", items: int = 100, concurrency: int = 64, reps: int = 3, data_dir: str = "",
        log=print) -> dict:
    data_dir = data_dir or None
    t0 = time.perf_counter()
    bodies, replies = record_requests(task, items, data_dir=data_dir)
    # The scripted server a second time, its constant reply as long as the model's average reply: what
    # the longer replies alone cost (serialisation, the kernel's copies), apart from the model's work.
    same_size = "x " * (sum(len(r) for r in replies) // len(replies) // 2)
    payloads = [json.dumps(b).encode() for b in bodies]
    completions = sum(b["n"] for b in bodies)
    log(f"{len(bodies)} requests ({completions} completions) recorded from the seed workflows of {task} on "
        f"{items} items in {time.perf_counter() - t0:.1f} s; {reps} repetitions, {concurrency} in flight")
    sim_args = ["--simulate", task] + (["--data_dir", data_dir] if data_dir else [])
    res: dict = {"setting": {"task": task, "items": items, "concurrency": concurrency, "reps": reps,
                             "requests": len(bodies), "completions": completions, "cpus": os.cpu_count()}}
    # Each repetition starts both servers afresh: the first pass is what a new server pays (the simulated
    # model profiles each item on first sight), the second the same requests again (steady state).
    servers = {"scripted": {"reply": SCRIPTED_REPLY}, "scripted_same_size": {"reply": same_size},
               "simulated": {"args": sim_args}}
    ms: dict = {(name, p): [] for name in servers for p in ("first_pass", "second_pass")}
    for _ in range(reps):
        for name, kwargs in servers.items():
            with SimProcess(**kwargs) as srv:
                for p in ("first_pass", "second_pass"):
                    ms[(name, p)].append(_server_ms(srv, payloads, concurrency))
    for name in servers:
        res[name] = {p: {"ms_per_request": spread(m / len(bodies) for m in ms[(name, p)]),
                         "ms_per_completion": spread(m / completions for m in ms[(name, p)])}
                     for p in ("first_pass", "second_pass")}
        first = fmt_spread(res[name]['first_pass']['ms_per_request'], 3)
        log(f"  {name:18s} server CPU per request: new server {first}"
            f" ms, second pass {fmt_spread(res[name]['second_pass']['ms_per_request'], 3)} ms; per completion "
            f"{fmt_spread(res[name]['second_pass']['ms_per_completion'], 3)} ms (second pass)")
    for ref in ("scripted", "scripted_same_size"):
        key = f"simulated_over_{ref}"
        res[key] = {p: spread(a / b for a, b in zip(ms[("simulated", p)], ms[(ref, p)]))
                    for p in ("first_pass", "second_pass")}
        log(f"simulated / {ref} server CPU per request: new server {fmt_spread(res[key]['first_pass'])}, "
            f"second pass {fmt_spread(res[key]['second_pass'])}")
    return res


def main(config) -> None:
    """launch/bench_sim.py: configs/bench_sim.py's keys are the parameters of `run`."""
    run_config(config, default=run)

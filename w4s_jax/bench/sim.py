"""Simulated-executor speed (launch/bench_sim.py): server CPU per request and per completion of the simulated
strong model (`--simulate`) against the scripted server (`--reply`, what the rollout tests and benchmarks
used before it), both serving the same recorded requests in the same run.

The requests are those the seed workflows of the task send for `items` items (recorded by running the
workflows in this process against the model, code execution included), so the mix of call kinds (solve,
5- and 3-sample votes, reviews, revisions, debate rounds, routing, code) is what an evaluation sends.
Each server runs in its own process; its CPU is read from /proc, so the client's is not counted. A pass
of all requests first warms both up (the model profiles each item on first sight, once per process: the
cold pass is reported too); then measured passes alternate between the two servers.
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


def record_requests(task_name: str, items: int, split: str = "valid", data_dir: str | None = None) -> list[dict]:
    """The chat requests the task's seed workflows send for its first `items` items of `split`."""
    from w4s_jax.rollout.agent_api import Agent
    from w4s_jax.sim import SimulatedModel
    from w4s_jax.tasks import get
    task = get(task_name, data_dir)
    model = SimulatedModel.for_task(task)
    bodies: list[dict] = []

    class Recorder:
        def call(self, req):
            body = {"model": "sim-strong", "messages": req["messages"], "temperature": req["temperature"],
                    "max_completion_tokens": req["max_completion_tokens"], "n": req["n"]}
            if req["response_format"] == "json_object":
                body["response_format"] = {"type": "json_object"}
            bodies.append(body)
            return model.complete(body)

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
    return bodies


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
    bodies = record_requests(task, items, data_dir=data_dir)
    payloads = [json.dumps(b).encode() for b in bodies]
    completions = sum(b["n"] for b in bodies)
    log(f"{len(bodies)} requests ({completions} completions) recorded from the seed workflows of {task} on "
        f"{items} items in {time.perf_counter() - t0:.1f} s; {reps} repetitions, {concurrency} in flight")
    sim_args = ["--simulate", task] + (["--data_dir", data_dir] if data_dir else [])
    res: dict = {"setting": {"task": task, "items": items, "concurrency": concurrency, "reps": reps,
                             "requests": len(bodies), "completions": completions, "cpus": os.cpu_count()}}
    # Each repetition starts both servers afresh: the first pass is what a new server pays (the simulated
    # model profiles each item on first sight), the second the same requests again (steady state).
    ms: dict = {(name, p): [] for name in ("scripted", "simulated") for p in ("first_pass", "second_pass")}
    for _ in range(reps):
        for name, kwargs in (("scripted", {"reply": SCRIPTED_REPLY}), ("simulated", {"args": sim_args})):
            with SimProcess(**kwargs) as srv:
                for p in ("first_pass", "second_pass"):
                    ms[(name, p)].append(_server_ms(srv, payloads, concurrency))
    for name in ("scripted", "simulated"):
        res[name] = {p: {"ms_per_request": spread(m / len(bodies) for m in ms[(name, p)]),
                         "ms_per_completion": spread(m / completions for m in ms[(name, p)])}
                     for p in ("first_pass", "second_pass")}
        log(f"  {name:9s} server CPU per request: new server {fmt_spread(res[name]['first_pass']['ms_per_request'], 3)}"
            f" ms, second pass {fmt_spread(res[name]['second_pass']['ms_per_request'], 3)} ms; per completion "
            f"{fmt_spread(res[name]['second_pass']['ms_per_completion'], 3)} ms (second pass)")
    res["simulated_over_scripted"] = {
        p: spread(a / b for a, b in zip(ms[("simulated", p)], ms[("scripted", p)])) for p in ("first_pass", "second_pass")}
    log("simulated / scripted server CPU: new server "
        f"{fmt_spread(res['simulated_over_scripted']['first_pass'])}, second pass "
        f"{fmt_spread(res['simulated_over_scripted']['second_pass'])}")
    return res


def main(config) -> None:
    """launch/bench_sim.py: configs/bench_sim.py's keys are the parameters of `run`."""
    run_config(config, default=run)

"""Simulated-executor speed (launch/bench_sim.py): server CPU per request and per completion of the simulated
strong model (`--simulate`) against the scripted server (`--reply`, what the rollout tests and benchmarks
used before it), all serving the same recorded requests in the same run; the scripted server also with
a reply as long as the model's average, to tell the cost of longer replies from the model's own work.

The requests are those the seed workflows of the task send for `items` items (recorded by running the
workflows in this process against the model, code execution included), so the mix of call kinds (solve,
5- and 3-sample votes, reviews, revisions, debate rounds, routing, code) is what an evaluation sends.
Each server runs in its own process; its CPU is read from /proc, so the client's is not counted. Every
repetition starts each server afresh and sends it three passes:
  first_pass       the seed workflows' requests: what a new server pays (the model profiles each item
                   on first sight, once per process);
  second_pass      the same requests again (a repeated evaluation; repeated requests are remembered);
  other_workflows  the requests of `other_workflows` workflows drawn from the tiny meta-agent's design
                   space on the same items: what a search pays once its items are known (new prompts).
"""
from __future__ import annotations

import asyncio
import json
import os
import time

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import fmt_spread, process_cpu_s, spread
from w4s_jax.sim.process import SimProcess

SCRIPTED_REPLY = "The answer is 7"


def design_workflows(task_name: str, count: int, seed: int = 0, data_dir: str | None = None) -> dict[str, str]:
    """`count` distinct workflows drawn (seeded) from the tiny meta-agent's design space for the task."""
    import random

    from w4s_jax.metaagent import sample_design, task_style
    from w4s_jax.metaagent.render import render_code
    from w4s_jax.tasks import get
    style, rng, out = task_style(get(task_name, data_dir)), random.Random(seed), {}
    for _ in range(100 * count):
        if len(out) == count:
            break
        d = sample_design(rng)
        out.setdefault(repr(d), render_code(d, style))
    return out


def record_requests(task_name: str, items: int, split: str = "valid", data_dir: str | None = None,
                    workflows: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """The chat requests the workflows (default: the task's seed workflows) send for its first `items` items
    of `split`, and the simulated model's replies (one per completion)."""
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
        for src in (workflows or task.seed_workflows()).values():
            ns: dict = {}
            exec(compile(src, "<seed workflow>", "exec"), ns)  # noqa: S102 - our own seed workflows
            ns["solver"](agent, it.question)
    return bodies, replies


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
    c0 = process_cpu_s(srv.proc.pid)
    asyncio.run(_post_all(srv.base_url, payloads, concurrency))
    return 1000 * (process_cpu_s(srv.proc.pid) - c0)


PASSES = ("first_pass", "second_pass", "other_workflows")


def run(*, task: str = "synth_arith", items: int = 100, other_workflows: int = 8, concurrency: int = 64,
        reps: int = 3, data_dir: str = "", reference_tree: str = "", seed: int = 0, log=print) -> dict:
    """`reference_tree`: another checkout of this project (e.g. `git worktree add /tmp/ref <rev>`) whose
    scripted server is measured too, in the same run: the simulated model's CPU against an older server."""
    data_dir = data_dir or None
    if reference_tree and not os.path.isfile(os.path.join(reference_tree, "w4s_jax", "sim", "__main__.py")):
        raise ValueError(f"bench_sim: reference_tree {reference_tree!r} is not a checkout of this project "
                         "(no w4s_jax/sim/__main__.py in it)")
    t0 = time.perf_counter()
    bodies, replies = record_requests(task, items, data_dir=data_dir)
    designs = design_workflows(task, other_workflows, seed, data_dir)
    other, _ = record_requests(task, items, data_dir=data_dir, workflows=designs)
    # The scripted server a second time, its constant reply as long as the model's average reply: what
    # the longer replies alone cost (serialisation, the kernel's copies), apart from the model's work.
    same_size = "x " * (sum(len(r) for r in replies) // len(replies) // 2)
    payloads = {"first_pass": [json.dumps(b).encode() for b in bodies]}
    payloads["second_pass"] = payloads["first_pass"]
    payloads["other_workflows"] = [json.dumps(b).encode() for b in other]
    requests = {p: len(payloads[p]) for p in PASSES}
    completions = {"first_pass": sum(b["n"] for b in bodies), "other_workflows": sum(b["n"] for b in other)}
    completions["second_pass"] = completions["first_pass"]
    log(f"{requests['first_pass']} requests ({completions['first_pass']} completions) from the seed workflows "
        f"and {requests['other_workflows']} ({completions['other_workflows']}) from {len(designs)} drawn "
        f"workflows of {task} on {items} items, recorded in {time.perf_counter() - t0:.1f} s; {reps} "
        f"repetitions, {concurrency} in flight")
    sim_args = ["--simulate", task] + (["--data_dir", data_dir] if data_dir else [])
    res: dict = {"setting": {"task": task, "items": items, "other_workflows": len(designs),
                             "concurrency": concurrency, "reps": reps, "requests": requests,
                             "completions": completions, "cpus": os.cpu_count(),
                             "reference_tree": reference_tree or None}}
    servers = {"scripted": {"reply": SCRIPTED_REPLY}, "scripted_same_size": {"reply": same_size},
               "simulated": {"args": sim_args}}
    if reference_tree:
        servers["reference_scripted"] = {"reply": SCRIPTED_REPLY, "tree": reference_tree}
    ms: dict = {(name, p): [] for name in servers for p in PASSES}
    for _ in range(reps):   # every repetition starts each server afresh
        for name, kwargs in servers.items():
            with SimProcess(**kwargs) as srv:
                for p in PASSES:
                    ms[(name, p)].append(_server_ms(srv, payloads[p], concurrency))
    for name in servers:
        res[name] = {p: {"ms_per_request": spread(m / requests[p] for m in ms[(name, p)]),
                         "ms_per_completion": spread(m / completions[p] for m in ms[(name, p)])} for p in PASSES}
        log(f"  {name:18s} server CPU per completion: " + ", ".join(
            f"{p} {fmt_spread(res[name][p]['ms_per_completion'], 3)} ms" for p in PASSES))
    for ref in [r for r in servers if r != "simulated"]:
        key = f"simulated_over_{ref}"
        res[key] = {p: spread(a / b for a, b in zip(ms[("simulated", p)], ms[(ref, p)])) for p in PASSES}
        log(f"simulated / {ref} server CPU: " + ", ".join(f"{p} {fmt_spread(res[key][p])}" for p in PASSES))
    return res


def main(config) -> None:
    """launch/bench_sim.py: configs/bench_sim.py's keys are the parameters of `run`."""
    run_config(config, default=run)

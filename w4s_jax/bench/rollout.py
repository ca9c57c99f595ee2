"""Rollout benchmark (launch/bench_rollout.py): evaluation throughput against a slow API, the public W4S
scheme on the same server, client CPU per call, sandbox start-up and execute_code rate.

The simulated server always runs in its own process, so its CPU is not charged to the client. Each
repetition runs our two batches, then the public W4S scheme: the sides alternate, so load from other work
falls on both. No JAX here: the rollout side runs on a CPU box.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import resource
import time
from dataclasses import dataclass

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import Timing, fmt_spread, process_cpu_s, spread
from w4s_jax.rollout.evaluate import evaluate_workflow
from w4s_jax.rollout.executor import Executor
from w4s_jax.rollout.pool import WorkerPool
from w4s_jax.sim.process import SimProcess


@dataclass
class _Item:
    id: str
    question: str
    answer: str


class _Task:
    name = "bench"
    description = "benchmark"

    def score(self, prediction, item) -> float:
        return 1.0 if str(prediction).strip().endswith(item.answer) else 0.0


def _items(n: int, tag: str = "") -> list[_Item]:
    return [_Item(f"i{k}", f"{tag}question {k}", "7") for k in range(n)]


def _workflow(candidate: int, calls: int) -> str:
    # Distinct prompts per candidate and step: nothing is deduplicated, every call reaches the server.
    return f'''
def solver(agent, task):
    out = ""
    for step in range({calls}):
        out = agent.call_llm(messages=[{{"role": "user", "content": f"candidate {candidate} step {{step}}: {{task}}"}}],
                             temperature=0.0)[0]
    return out
'''


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _ours(base_url, *, candidates, items, calls, concurrency, sandbox, first_candidate=0) -> dict:
    """Two batches of `candidates` evaluations on one Executor and one WorkerPool, as a search loop runs them.

    The first batch starts cold: new connections, every sandbox spawned on the spot (the pool starts
    empty). Between batches the pool is refilled, as it is while the meta-agent writes the next
    workflows; the second batch shows the steady state. Prompts differ between batches and repetitions
    (candidates are numbered from `first_candidate`): nothing is cached.
    """
    task = _Task()
    out = {}
    async with Executor(base_url, model="sim", max_concurrency=concurrency, request_timeout_s=60) as ex, \
            WorkerPool(candidates, sandbox=sandbox, prefill=False) as pool:
        for batch in ("first_batch", "steady_state"):
            if batch == "steady_state":
                await pool.fill()
            n0 = ex.stats.http_requests
            first = first_candidate + (candidates if batch == "steady_state" else 0)
            t0, c0 = time.perf_counter(), _cpu()
            res = await asyncio.gather(*[
                evaluate_workflow(_workflow(first + c, calls), task, _items(items), ex, sandbox=sandbox,
                                  threads=items, eval_timeout_s=600, pool=pool)
                for c in range(candidates)])
            wall = time.perf_counter() - t0
            n = ex.stats.http_requests - n0
            worker = sum(r.worker_cpu_s or 0.0 for r in res)
            out[batch] = {"wall_s": wall, "http_requests": n, "accuracy": [r.accuracy for r in res],
                          "infra_errors": sum(r.infra_errors for r in res),
                          "spawn_to_ready_s": [round(r.spawn_to_ready_s or 0.0, 3) for r in res],
                          "parent_cpu_ms_per_call": 1000 * (_cpu() - c0) / max(n, 1),
                          "worker_cpu_ms_per_call": 1000 * worker / max(n, 1)}
    return out


def _w4s_public_scheme(base_url, *, candidates, items, calls, threads, rep=0) -> dict:
    """Candidates one after another, each item in a thread of a 48-thread pool, blocking SDK calls."""
    import openai
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)

    def item(c, k):
        out = ""
        for step in range(calls):
            r = client.chat.completions.create(
                model="sim", temperature=0.0,
                messages=[{"role": "user", "content": f"w4s {rep} candidate {c} step {step}: question {k}"}])
            out = r.choices[0].message.content
        return out

    t0, c0 = time.perf_counter(), _cpu()
    for c in range(candidates):
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda k: item(c, k), range(items)))
    wall = time.perf_counter() - t0
    client.close()
    return {"wall_s": wall, "cpu_ms_per_call": 1000 * (_cpu() - c0) / (candidates * items * calls)}


async def _client_cpu(base_url, *, n_calls, concurrency) -> dict:
    """CPU ms per call at `concurrency` in flight: our Executor vs the bare SDK (both HTTP clients)."""
    import openai
    out = {}
    msgs = lambda i: [{"role": "user", "content": f"cpu probe {i}"}]  # noqa: E731

    async def drive(fn):
        sem = asyncio.Semaphore(concurrency)

        async def one(i):
            async with sem:
                await fn(i)
        await one(-1)  # warm-up: connection pool, imports
        c0 = _cpu()
        await asyncio.gather(*[one(i) for i in range(n_calls)])
        return 1000 * (_cpu() - c0) / n_calls

    for name, http in (("sdk_httpx", None), ("sdk_aiohttp", "aiohttp")):
        kw = {"http_client": openai.DefaultAioHttpClient()} if http else {}
        client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, **kw)
        out[name] = await drive(lambda i: client.chat.completions.create(model="sim", messages=msgs(i)))
        await client.close()
    async with Executor(base_url, model="sim", max_concurrency=concurrency) as ex:
        out["ours_executor"] = await drive(lambda i: ex.chat(msgs(i), temperature=0.0))
    return out


async def _sandbox_overhead(base_url, *, reps, exec_calls) -> dict:
    task = _Task()
    quick = "def solver(agent, task):\n    return '7'\n"
    out = {}
    async with Executor(base_url, model="sim") as ex:
        for mode in ("bwrap", "none"):
            ready = []
            for _ in range(reps):
                r = await evaluate_workflow(quick, task, _items(1), ex, sandbox=mode)
                ready.append(r.spawn_to_ready_s)
            out[f"spawn_to_first_item_s_{mode}"] = sorted(ready)[len(ready) // 2]
        per_item = max(1, exec_calls // 64)
        code = ("def solver(agent, task):\n"
                f"    for _ in range({per_item}):\n"
                "        v = agent.execute_code('def solution():\\n    return 3 + 4')\n"
                "    return str(v)\n")
        r = await evaluate_workflow(code, task, _items(64), ex, threads=64)
        total = per_item * 64
        out["execute_code_calls_per_s"] = total / (r.wall_s - (r.spawn_to_ready_s or 0.0))
        out["execute_code_ok"] = r.accuracy == 1.0
    return out


def run(*, latency_s: float = 1.0, candidates: int = 5, items_per_candidate: int = 128, calls: int = 3,
        concurrency: int = 256, w4s_threads: int = 48, skip_w4s: bool = False, reps: int = 3, cpu_calls: int = 3000,
        sandbox_reps: int = 5, exec_calls: int = 1280, log=print) -> dict:
    items = items_per_candidate
    # Per-request INFO lines of the HTTP stack (absl turns INFO on) would be measured as client CPU.
    for name in ("httpx", "httpx2", "openai", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    res: dict = {"setting": dict(latency_s=latency_s, candidates=candidates, items=items, calls=calls,
                                 concurrency=concurrency, w4s_threads=w4s_threads, reps=reps, cpus=os.cpu_count())}
    total_calls = candidates * items * calls
    # No schedule beats the slots' throughput, nor an item's calls made one after another.
    ideal = max(total_calls * latency_s / concurrency, calls * latency_s)
    w4s_ideal = candidates * -(-items // w4s_threads) * calls * latency_s
    walls = {"first_batch": Timing(), "steady_state": Timing(), "w4s_public_scheme": Timing()}
    runs = []
    with SimProcess(latency_s, reply="The answer is 7") as srv:
        log(f"{reps} repetitions of: ours, {candidates} candidates x {items} items x {calls} calls, {latency_s:g} s "
            f"latency, cap {concurrency} (ideal {ideal:.2f} s), two batches"
            + ("" if skip_w4s else f"; then the public W4S scheme, candidates in sequence, {w4s_threads} threads "
                                   f"(ideal {w4s_ideal:.1f} s)"))
        for rep in range(reps):
            s0 = process_cpu_s(srv.proc.pid)
            ours = asyncio.run(_ours(srv.base_url, candidates=candidates, items=items, calls=calls,
                                     concurrency=concurrency, sandbox="bwrap", first_candidate=2 * candidates * rep))
            # The server shares this box's cores: what it burns is not available to the client.
            ours["server_cpu_ms_per_call"] = 1000 * (process_cpu_s(srv.proc.pid) - s0) / total_calls / 2
            for batch in ("first_batch", "steady_state"):
                walls[batch].samples.append(ours[batch]["wall_s"])
            line = ", ".join(f"{b} {ours[b]['wall_s']:.2f} s (efficiency {ideal / ours[b]['wall_s']:.3f})"
                             for b in ("first_batch", "steady_state"))
            if not skip_w4s:
                ours["w4s_public_scheme"] = _w4s_public_scheme(srv.base_url, candidates=candidates, items=items,
                                                               calls=calls, threads=w4s_threads, rep=rep)
                walls["w4s_public_scheme"].samples.append(ours["w4s_public_scheme"]["wall_s"])
                line += f"; public W4S scheme {ours['w4s_public_scheme']['wall_s']:.2f} s"
            log(f"  repetition {rep + 1}: {line}")
            runs.append(ours)
    res["runs"] = runs
    for batch in ("first_batch", "steady_state"):
        res[batch] = {"ideal_s": ideal, "wall_s": walls[batch].seconds(),
                      "efficiency": spread(ideal / t for t in walls[batch].samples)}
        log(f"{batch}: wall {fmt_spread(res[batch]['wall_s'])} s, efficiency {fmt_spread(res[batch]['efficiency'], 3)}")
    if not skip_w4s:
        res["w4s_public_scheme"] = {"ideal_s": w4s_ideal, "wall_s": walls["w4s_public_scheme"].seconds()}
        for batch in ("first_batch", "steady_state"):  # the ratio within each repetition, then its spread
            res[f"speedup_vs_w4s_{batch}"] = spread(w / o for w, o in zip(walls["w4s_public_scheme"].samples,
                                                                        walls[batch].samples))
            log(f"ours vs the public W4S scheme ({batch}): {fmt_spread(res[f'speedup_vs_w4s_{batch}'])}x faster")
    with SimProcess(0.0, reply="The answer is 7") as srv:
        log(f"client CPU per call ({cpu_calls} calls, {concurrency} in flight, zero-latency server) ...")
        res["client_cpu_ms_per_call"] = asyncio.run(_client_cpu(srv.base_url, n_calls=cpu_calls,
                                                                 concurrency=concurrency))
        log("  " + ", ".join(f"{k} {v:.3f} ms" for k, v in res["client_cpu_ms_per_call"].items()))
        log("sandbox start-up and execute_code rate ...")
        res["sandbox"] = asyncio.run(_sandbox_overhead(srv.base_url, reps=sandbox_reps, exec_calls=exec_calls))
        log("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in res["sandbox"].items()))
    return res



def main(config) -> None:
    """launch/bench_rollout.py: configs/bench_rollout.py's keys are the parameters of the function it runs."""
    run_config(config, default=run)

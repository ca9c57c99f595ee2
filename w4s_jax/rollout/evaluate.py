"""Evaluate one workflow on task items: run it in a sandboxed worker, answer its executor calls, score.

Outcomes per item are kept apart: an answer (scored by the task), a workflow error (scored 0, its text
is what the meta-agent sees), or an infrastructure error (the executor API failed after retries, or the
budget ran out): never scored, and by default it makes the accuracy unmeasured (None), not lower.
"""
from __future__ import annotations

import ast
import asyncio
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from .errors import InfraError, ProtocolError, RequestRejectedError, SandboxUnavailableError, WorkflowCodeError
from .executor import Executor, Usage
from .pool import WorkerPool
from .sandbox import SandboxLimits, WorkerProcess, import_paths

MAX_MESSAGES = 256
MAX_COMPLETION_TOKENS = 65536


@dataclass
class ItemRecord:
    item_id: Any
    answer: Any = None
    score: float | None = None
    correct: bool | None = None
    error: str | None = None          # the workflow's fault (exception, timeout, crash)
    infra_error: str | None = None    # not the workflow's fault; the item is not scored
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    accuracy: float | None             # None: infrastructure errors made it unmeasurable
    records: list[ItemRecord]
    infra_errors: int
    workflow_errors: int
    measured_accuracy: float | None    # mean score over the items that were not infra errors
    usage: dict = field(default_factory=dict)
    wall_s: float = 0.0
    spawn_to_ready_s: float | None = None
    sandbox: str = "bwrap"
    note: str | None = None            # e.g. the worker crashed or the evaluation timed out
    worker_cpu_s: float | None = None  # CPU used by the sandboxed worker (reported by it at the end)
    served_usage: dict = field(default_factory=dict)  # what the workflow's calls cost when first made:
    # the same in a run and its replay (usage counts what was billed now), for cost-aware rewards

    @property
    def status(self) -> str:
        return "ok" if self.accuracy is not None else "infrastructure error"


def check_workflow_code(code: str) -> None:
    """Reject code that cannot possibly run, with the line that is wrong (nothing is executed here)."""
    if not isinstance(code, str) or not code.strip():
        raise WorkflowCodeError("workflow code is empty")
    try:
        tree = ast.parse(code, "<workflow>")
    except SyntaxError as e:
        line = (e.text or "").rstrip()
        raise WorkflowCodeError(f"workflow code, line {e.lineno}: syntax error: {e.msg}"
                                + (f"\n    {line}" if line else "")) from None
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    if "solver" not in defined:
        raise WorkflowCodeError("workflow code defines no top-level function `solver(agent, task)`")
    fn = next((n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "solver"), None)
    if fn is not None:
        raise WorkflowCodeError(f"workflow code, line {fn.lineno}: `solver` must be a plain function, not async")


def _validate_request(req: Any) -> str | None:
    """The worker is untrusted: re-check what agent_api already checked before spending money on it."""
    if not isinstance(req, dict):
        return "request is not an object"
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not 0 < len(msgs) <= MAX_MESSAGES:
        return f"messages must be a list of 1..{MAX_MESSAGES} messages"
    for i, m in enumerate(msgs):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            return f"messages[{i}] must have string 'role' and 'content'"
    n, temp, mct = req.get("n"), req.get("temperature"), req.get("max_completion_tokens")
    if not isinstance(n, int) or not 1 <= n <= 64:
        return "num_of_response must be an integer in 1..64"
    if not isinstance(temp, (int, float)) or not 0 <= temp <= 2:
        return "temperature must be a number in [0, 2]"
    if not isinstance(mct, int) or not 1 <= mct <= MAX_COMPLETION_TOKENS:
        return f"max_completion_tokens must be an integer in 1..{MAX_COMPLETION_TOKENS}"
    if req.get("response_format") not in ("text", "json_object"):
        return "response_format must be 'text' or 'json'"
    if not isinstance(req.get("model"), str):
        return "model must be a string"
    return None


def _worker_limits(limits: SandboxLimits, n_threads: int, sandbox: str) -> dict:
    return {"memory_bytes": limits.memory_mb << 20, "cpu_s": limits.cpu_s, "file_bytes": limits.file_mb << 20,
            # item threads + their spares + reader/monitor + what the workflow may start itself
            "nproc": n_threads + 16 + limits.extra_procs if sandbox == "bwrap" else None,
            "open_files": limits.open_files, "thread_stack_bytes": limits.thread_stack_kb << 10,
            "exec_memory_bytes": limits.exec_memory_mb << 20, "exec_parallel": limits.exec_parallel}


class _Evaluation:
    def __init__(self, code: str, items, executor: Executor, n: int):
        self.items, self.executor = items, executor
        self.code_id = hashlib.sha256(code.encode()).hexdigest()[:16]
        self.results: dict[int, dict] = {}
        self.usage = [Usage() for _ in range(n)]
        self.served = [Usage() for _ in range(n)]   # as first served: replays count what the reply cost
        self.calls = [0] * n
        self.open_calls = [0] * n
        self.infra: dict[int, str] = {}
        self.unattributed = Usage()
        self.tasks: set[asyncio.Task] = set()

    async def handle_call(self, wp: WorkerProcess, msg: dict) -> None:
        rid, item, req = msg.get("id"), msg.get("item"), msg.get("req")
        if not (isinstance(item, int) and 0 <= item < len(self.items)):
            item = None
        problem = _validate_request(req)
        if problem is not None:
            await wp.send({"t": "reply", "id": rid, "ok": False, "kind": "invalid", "error": problem})
            return
        if item is not None:
            self.open_calls[item] += 1
            self.calls[item] += 1
        try:
            res = await self.executor.chat(req["messages"], model=req["model"], temperature=req["temperature"],
                                           max_completion_tokens=req["max_completion_tokens"], n=req["n"],
                                           response_format=req["response_format"],
                                           sample_scope=f"{self.code_id}:{item}")
        except InfraError as e:
            if item is not None:
                self.infra.setdefault(item, str(e))
            else:  # a call from a thread we could not attribute: every unfinished item may depend on it
                for i in range(len(self.items)):
                    if i not in self.results:
                        self.infra.setdefault(i, str(e))
            await wp.send({"t": "reply", "id": rid, "ok": False, "kind": "infra", "error": str(e)})
            return
        except RequestRejectedError as e:
            await wp.send({"t": "reply", "id": rid, "ok": False, "kind": "rejected", "error": str(e)})
            return
        finally:
            if item is not None:
                self.open_calls[item] -= 1
        (self.usage[item] if item is not None else self.unattributed).add(res.usage)
        if item is not None:
            self.served[item].add(res.served_usage)
        await wp.send({"t": "reply", "id": rid, "ok": True, "contents": res.contents})


async def evaluate_workflow(code: str, task, items: Sequence, executor: Executor, *, sandbox: str = "bwrap",
                           threads: int = 64, item_timeout_s: float = 120.0, eval_timeout_s: float = 1800.0,
                           load_timeout_s: float = 60.0, limits: SandboxLimits | None = None,
                           max_infra_fraction: float = 0.0, pool: WorkerPool | None = None,
                           on_result: Callable[[int], None] | None = None) -> EvalResult:
    """Run `solver(agent, item.question)` for every item in one sandboxed worker and score the answers.

    With `pool`, the worker comes started from it (its sandbox and limits must be the ones asked for here).
    `on_result(i)` is called as the workflow's outcome for item i arrives (progress bars), before scoring.
    A task with `async score_many(predictions, items) -> list[float]` scores all answers in one call (e.g.
    concurrently in sandboxes, for code); otherwise `task.score` is called per answer.
    Raises WorkflowCodeError if the code cannot be loaded (syntax error, no solver, error at import) and
    SandboxUnavailableError if the sandbox cannot be set up; everything else ends up in the result.
    """
    check_workflow_code(code)
    items = list(items)
    if not items:
        raise ValueError("evaluate_workflow: no items to evaluate")
    limits = limits or SandboxLimits()
    ev = _Evaluation(code, items, executor, len(items))
    t0 = time.perf_counter()
    n_threads = max(1, min(threads, len(items)))
    if pool is not None:
        if not pool.matches(sandbox, limits):
            raise ValueError(f"evaluate_workflow: the pool's workers are sandbox={pool.sandbox!r} with "
                             f"{pool.limits}, but this evaluation asks for sandbox={sandbox!r} with {limits}")
        wp = await pool.take()
    else:
        wp = WorkerProcess(sandbox, limits)
        await wp.start()
    privileged = sandbox == "bwrap" and os.geteuid() == 0
    ready_at = None
    note = None
    worker_cpu = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + eval_timeout_s
    try:
        await wp.send({
            "t": "init", "code": code, "items": [{"i": i, "question": it.question} for i, it in enumerate(items)],
            "threads": n_threads, "spare_threads": 16, "item_timeout_s": item_timeout_s,
            "uid": wp.uid, "require_unprivileged": privileged, "import_paths": import_paths(),
            "limits": _worker_limits(limits, n_threads, sandbox)})
        # One timeout scope per phase, not one wait_for per message: that costs a task per message.
        try:
            async with asyncio.timeout(min(load_timeout_s, eval_timeout_s)):
                while ready_at is None:
                    msg = await wp.recv()
                    if msg is None:
                        raise SandboxUnavailableError("the sandbox worker exited before loading the workflow: "
                                                      + (wp.stderr_text[-2000:] or "no diagnostics"))
                    if msg["t"] == "fatal":
                        err = str(msg.get("error", "unknown error"))
                        if err.startswith("sandbox:"):
                            raise SandboxUnavailableError(err)
                        raise WorkflowCodeError(err)
                    if msg["t"] == "ready":
                        ready_at = time.perf_counter() - t0
        except TimeoutError:
            raise WorkflowCodeError(f"loading the workflow code took longer than {load_timeout_s:g} s "
                                    "(module-level code must not block)") from None
        except ProtocolError as e:
            raise WorkflowCodeError(f"the workflow broke the worker's control channel while loading: {e}") from None
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    msg = await wp.recv()
                    if msg is None:
                        rc = await wp.kill()
                        note = f"the sandbox worker exited (status {rc}) before all items finished"
                        break
                    kind = msg["t"]
                    if kind == "call":
                        t = asyncio.ensure_future(ev.handle_call(wp, msg))
                        ev.tasks.add(t)
                        t.add_done_callback(ev.tasks.discard)
                    elif kind == "result":
                        i = msg.get("item")
                        if isinstance(i, int) and 0 <= i < len(items) and i not in ev.results:
                            ev.results[i] = msg
                            if on_result is not None:
                                on_result(i)
                    elif kind == "done":
                        cpu = msg.get("cpu_s")
                        worker_cpu = float(cpu) if isinstance(cpu, (int, float)) else None
                        break
        except TimeoutError:
            note = f"the evaluation timed out after {eval_timeout_s:g} s"
        except ProtocolError as e:
            note = f"the worker broke the control protocol ({e}); the workflow may have written to it"
    finally:
        for t in list(ev.tasks):  # calls of abandoned (timed-out) threads: nobody is waiting for them
            t.cancel()
        if ev.tasks:
            await asyncio.gather(*ev.tasks, return_exceptions=True)
        await wp.kill()
        if pool is not None:
            pool.replenish()
    res = await _finish(ev, task, items, ready_at, sandbox, note, max_infra_fraction)
    res.wall_s = time.perf_counter() - t0
    res.worker_cpu_s = worker_cpu
    return res


async def _score_answers(task, items, records: list[ItemRecord], idx: list[int]) -> None:
    score_many = getattr(task, "score_many", None)
    if score_many is None:
        for i in idx:
            try:
                records[i].score = float(task.score(records[i].answer, items[i]))
            except Exception as e:  # an answer of a shape the scorer cannot take is a wrong answer
                records[i].error = f"scoring the answer failed: {type(e).__name__}: {e}"
        return
    try:
        scores = [float(s) for s in await score_many([records[i].answer for i in idx], [items[i] for i in idx])]
        if len(scores) != len(idx):
            raise ValueError(f"{len(scores)} scores for {len(idx)} answers")
    except Exception as e:  # the scoring machinery failed, not the answers: unmeasured, not wrong
        for i in idx:
            records[i].infra_error = f"scoring failed: {type(e).__name__}: {e}"
        return
    for i, s in zip(idx, scores):
        records[i].score = s


async def _finish(ev: _Evaluation, task, items, ready_at, sandbox, note, max_infra_fraction) -> EvalResult:
    records, answered = [], []
    for i, it in enumerate(items):
        u = ev.usage[i]
        rec = ItemRecord(item_id=getattr(it, "id", i), calls=ev.calls[i], prompt_tokens=u.prompt_tokens,
                         completion_tokens=u.completion_tokens, cached_tokens=u.cached_tokens, cost_usd=u.cost_usd)
        msg = ev.results.get(i)
        if msg is not None:
            rec.latency_s = msg.get("latency_s")
        if i in ev.infra:
            rec.infra_error = ev.infra[i]
        elif msg is not None and msg.get("infra"):
            rec.infra_error = str(msg["infra"])
        elif msg is None and ev.open_calls[i] > 0:
            rec.infra_error = f"still waiting on the executor API when the evaluation ended ({note})"
        elif msg is None:
            rec.error = note or "no result"
        elif msg.get("error"):
            rec.error = str(msg["error"])
        else:
            rec.answer = msg.get("answer")
            answered.append(i)
        records.append(rec)
    if answered:
        await _score_answers(task, items, records, answered)
    for rec in records:
        if rec.infra_error is None and rec.score is None:
            rec.score = 0.0
        if rec.score is not None:
            rec.correct = rec.score >= 1.0
    scored = [r.score for r in records if r.infra_error is None]
    n_infra = len(records) - len(scored)
    measured = sum(scored) / len(scored) if scored else None
    acc = measured if (scored and n_infra <= max_infra_fraction * len(records)) else None
    total, served = Usage(), Usage()
    for u in [*ev.usage, ev.unattributed]:
        total.add(u)
    for u in ev.served:
        served.add(u)
    return EvalResult(accuracy=acc, records=records, infra_errors=n_infra,
                      workflow_errors=sum(1 for r in records if r.error is not None and r.infra_error is None),
                      measured_accuracy=measured, usage={**total.as_dict(), "calls": sum(ev.calls)},
                      spawn_to_ready_s=ready_at, sandbox=sandbox, note=note,
                      served_usage={**served.as_dict(), "calls": sum(ev.calls)})

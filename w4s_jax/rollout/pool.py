"""Sandboxed workers started ahead of need.

Starting a worker (bubblewrap, the interpreter, the worker's imports) costs about 70 ms of CPU. A burst of
evaluations started together pays that on their critical path, on the same cores that must answer their
first executor calls. A pool keeps `size` workers started and idle (waiting for their `init` message);
an evaluation takes one, and when it ends the pool starts a replacement in the background, e.g. while the
meta-agent writes the next workflow. A worker still serves exactly one evaluation: nothing is reused between
workflows, so isolation is the same as without a pool.

    async with WorkerPool(size=8) as pool:
        res = await evaluate_workflow(code, task, items, executor, pool=pool)
"""
from __future__ import annotations

import asyncio
import logging

from .errors import ProtocolError, SandboxUnavailableError
from .sandbox import SandboxLimits, WorkerProcess, check_sandbox

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, size: int, *, sandbox: str = "bwrap", limits: SandboxLimits | None = None,
                 hello_timeout_s: float = 30.0, prefill: bool = True):
        if size < 1:
            raise ValueError(f"WorkerPool: size must be >= 1, got {size}")
        self.size, self.sandbox = size, sandbox
        self.limits = limits or SandboxLimits()
        self.hello_timeout_s = hello_timeout_s
        self.prefill = prefill  # fill on entering `async with`; else the first evaluations spawn their own
        self._idle: list[WorkerProcess] = []
        self._starting: set[asyncio.Task] = set()
        self._closed = False
        self.started = self.taken = self.cold = 0   # workers started by the pool, handed out, not ready in time

    async def __aenter__(self) -> "WorkerPool":
        if self.prefill:
            await self.fill()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def matches(self, sandbox: str, limits: SandboxLimits) -> bool:
        return sandbox == self.sandbox and limits == self.limits

    async def fill(self) -> None:
        """Start workers until `size` are idle or starting, and wait for all of them to be ready."""
        if self.sandbox == "bwrap":
            # Once per process; fails here, loudly, rather than in each background start.
            await asyncio.get_running_loop().run_in_executor(None, check_sandbox, self.limits)
        self._top_up()
        if self._starting:
            await asyncio.gather(*list(self._starting), return_exceptions=True)

    async def take(self) -> WorkerProcess:
        """A started, idle worker, or (pool empty: a burst larger than `size`) a freshly spawned one."""
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        while self._idle:
            wp = self._idle.pop()
            if wp.proc is not None and wp.proc.returncode is None:
                self.taken += 1
                return wp
            await wp.kill()  # died while idle (e.g. killed from outside): never hand it out
        self.cold += 1
        wp = WorkerProcess(self.sandbox, self.limits)
        await wp.start()
        return wp

    def replenish(self) -> None:
        """Start replacements in the background. Called when an evaluation ends, not when it starts: a
        burst of evaluations keeps its CPU for their first calls, and the start-ups overlap what follows
        (scoring, the meta-agent writing the next workflows)."""
        self._top_up()

    def _top_up(self) -> None:
        while not self._closed and len(self._idle) + len(self._starting) < self.size:
            t = asyncio.ensure_future(self._start_one())
            self._starting.add(t)
            t.add_done_callback(self._starting.discard)

    async def _start_one(self) -> None:
        wp = WorkerProcess(self.sandbox, self.limits)
        try:
            await wp.start()
            self.started += 1
            async with asyncio.timeout(self.hello_timeout_s):
                msg = await wp.recv()
            if msg is None or msg.get("t") != "hello":
                raise SandboxUnavailableError("a pooled sandbox worker did not start: "
                                              + (wp.stderr_text[-500:] or f"first message {msg!r}"))
        except (OSError, TimeoutError, ProtocolError, SandboxUnavailableError) as e:
            log.warning("WorkerPool: starting a worker failed (%s); evaluations will spawn their own", e)
            await wp.kill()
            return
        except BaseException:
            await wp.kill()
            raise
        if self._closed:
            await wp.kill()
        else:
            self._idle.append(wp)

    async def close(self) -> None:
        self._closed = True
        # Start-ups in progress are not cancelled: they finish (bounded by hello_timeout_s) and, seeing the
        # pool closed, kill their worker (a sandbox killed in the middle of its set-up can leave bwrap's
        # inner half behind).
        if self._starting:
            await asyncio.gather(*list(self._starting), return_exceptions=True)
        idle, self._idle = self._idle, []
        await asyncio.gather(*(wp.kill() for wp in idle), return_exceptions=True)

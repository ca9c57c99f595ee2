"""`agent.execute_code` inside the sandbox: a fork server that runs each snippet in its own limited child.

The worker forks this server before it starts any thread (forking a threaded process is unsafe), so each
snippet is then a cheap fork of a small single-threaded process instead of a new interpreter. Each child
gets its own session (killed as a group on timeout), CPU and memory rlimits and a wall-clock deadline.
Standard library only: this file runs inside the sandbox.
"""
from __future__ import annotations

import ast
import io
import math
import os
import pickle
import resource
import selectors
import signal
import struct
import threading
import time
from collections import deque

_HDR = struct.Struct("!I")
MAX_RESULT_BYTES = 1 << 20


def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    buf = _HDR.pack(len(data)) + data
    while buf:
        buf = buf[os.write(fd, buf):]


def _frames(buf: bytearray):
    """Pop complete length-prefixed frames off `buf`."""
    out = []
    while len(buf) >= 4:
        (n,) = _HDR.unpack_from(buf)
        if len(buf) < 4 + n:
            break
        out.append(pickle.loads(bytes(buf[4:4 + n])))
        del buf[:4 + n]
    return out


class _Capped(io.TextIOBase):
    """A stdout/stderr that keeps the first few KB (for error messages) and drops the rest."""

    def __init__(self, cap: int = 8192):
        self.buf, self.cap = [], cap
        self.size = 0

    def write(self, s):
        if self.size < self.cap:
            self.buf.append(s[: self.cap - self.size])
        self.size += len(s)
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.buf)


def _run_snippet(code: str):
    """solution() if the code defines it, else the value of the last expression / assigned name."""
    tree = ast.parse(code, "<execute_code>")
    ns: dict = {"__name__": "__snippet__"}
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        head = ast.Module(body=tree.body[:-1], type_ignores=[])
        exec(compile(head, "<execute_code>", "exec"), ns)
        if callable(ns.get("solution")):
            return ns["solution"]()
        return eval(compile(ast.Expression(last.value), "<execute_code>", "eval"), ns)
    exec(compile(tree, "<execute_code>", "exec"), ns)
    if callable(ns.get("solution")):
        return ns["solution"]()
    if isinstance(last, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        target = last.targets[0] if isinstance(last, ast.Assign) else last.target
        if isinstance(target, ast.Name):
            return ns.get(target.id)
    return None


def _child(code: str, timeout: float, result_fd: int, mem_bytes: int) -> None:
    os.setsid()

    def lower(which, value):  # limits can only go down from what the worker already has
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    lower(resource.RLIMIT_CPU, int(math.ceil(timeout)) + 1)
    if mem_bytes:
        lower(resource.RLIMIT_AS, mem_bytes)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    # Nothing but the result pipe stays open: inherited descriptors (the worker's control channel, other
    # snippets' result pipes) would let untrusted code forge messages or results.
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, max(result_fd + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    import sys
    sys.stdout, sys.stderr = _Capped(), _Capped()
    try:
        value = _run_snippet(code)
        try:
            data = pickle.dumps(("ok", value), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps(("ok", repr(value)), protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_RESULT_BYTES:
            data = pickle.dumps(("error", f"execute_code: the result is larger than {MAX_RESULT_BYTES} bytes"))
    except BaseException as e:  # SystemExit from the snippet included: it is just an error to the workflow
        err = sys.stderr.getvalue().strip()
        msg = f"execute_code: {type(e).__name__}: {e}"
        if err:
            msg += f"\nstderr: {err[-2000:]}"
        data = pickle.dumps(("error", msg))
    try:
        buf = _HDR.pack(len(data)) + data
        while buf:
            buf = buf[os.write(result_fd, buf):]
    finally:
        os._exit(0)


def _server(req_fd: int, rep_fd: int, max_parallel: int, mem_bytes: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sel = selectors.DefaultSelector()
    sel.register(req_fd, selectors.EVENT_READ, None)
    inbuf = bytearray()
    queue: deque = deque()
    running: dict[int, dict] = {}   # result fd -> {id, pid, deadline, buf}

    def finish(fd, status, payload):
        job = running.pop(fd)
        sel.unregister(fd)
        os.close(fd)
        try:
            os.killpg(job["pid"], signal.SIGKILL)  # the group: leftovers of the snippet go with it
        except OSError:
            pass
        try:
            os.waitpid(job["pid"], 0)
        except ChildProcessError:
            pass
        _send(rep_fd, (job["id"], status, payload))

    while True:
        while queue and len(running) < max_parallel:
            jid, code, timeout = queue.popleft()
            try:
                r, w = os.pipe()
            except OSError as e:
                _send(rep_fd, (jid, "error", f"execute_code: cannot start the code's process: {e}"))
                continue
            try:
                pid = os.fork()
            except OSError as e:  # e.g. the process limit, reached by an earlier snippet's fork bomb
                os.close(r)
                os.close(w)
                _send(rep_fd, (jid, "error", f"execute_code: cannot start the code's process: {e}"))
                continue
            if pid == 0:
                os.close(r)
                os.close(req_fd)
                os.close(rep_fd)
                _child(code, timeout, w, mem_bytes)
            os.close(w)
            running[r] = {"id": jid, "pid": pid, "deadline": time.monotonic() + timeout, "buf": bytearray(),
                          "timeout": timeout}
            sel.register(r, selectors.EVENT_READ, r)
        now = time.monotonic()
        wait = min((j["deadline"] for j in running.values()), default=now + 3600) - now
        for key, _ in sel.select(max(0.0, wait)):
            if key.data is None:
                chunk = os.read(req_fd, 1 << 16)
                if not chunk:  # the worker is gone
                    for fd in list(running):
                        finish(fd, "error", "worker exited")
                    os._exit(0)
                inbuf += chunk
                queue.extend(_frames(inbuf))
                continue
            fd = key.data
            chunk = os.read(fd, 1 << 16)
            job = running[fd]
            if chunk:
                job["buf"] += chunk
                if len(job["buf"]) > MAX_RESULT_BYTES + 4096:
                    finish(fd, "error", "execute_code: the result is too large")
                    continue
            # The first complete result counts (processes the snippet forked may still hold the pipe).
            got = _frames(job["buf"])
            if got:
                finish(fd, *got[0])
            elif not chunk:
                finish(fd, "error", "execute_code: the code's process ended without a result "
                                    "(os._exit, a signal, or the memory / CPU limit)")
        now = time.monotonic()
        for fd, job in list(running.items()):
            if job["deadline"] <= now:
                finish(fd, "timeout", f"execute_code: timed out after {job['timeout']:g} s")


class CodeRunner:
    """Worker-side handle on the fork server; `execute` is thread-safe and blocks until the result."""

    def __init__(self, *, max_parallel: int = 2, mem_bytes: int = 1 << 30):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(req_w)
            os.close(rep_r)
            try:
                _server(req_r, rep_w, max_parallel, mem_bytes)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        self.pid = pid
        self._req_w, self._rep_r = req_w, rep_r
        self._lock = threading.Lock()
        self._waiting: dict[int, list] = {}
        self._next = 0
        self._dead: str | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self._reader = threading.Thread(target=self._read_loop, name="codeexec-reader", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buf = bytearray()
        while True:
            try:
                chunk = os.read(self._rep_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            for jid, status, payload in _frames(buf):
                slot = self._waiting.pop(jid, None)
                if slot is not None:
                    slot[1] = (status, payload)
                    slot[0].set()
        self._dead = "the execute_code server ended"
        for slot in list(self._waiting.values()):
            slot[1] = ("error", "execute_code: " + self._dead)
            slot[0].set()

    def execute(self, code: str, timeout: float):
        if self._dead:
            raise RuntimeError("execute_code: " + self._dead)
        ev = threading.Event()
        slot = [ev, None]
        with self._lock:
            jid = self._next
            self._next += 1
            self._waiting[jid] = slot
            _send(self._req_w, (jid, code, timeout))
        ev.wait()
        status, payload = slot[1]
        if status == "ok":
            return payload
        if status == "timeout":
            raise TimeoutError(payload)
        raise Exception(payload)

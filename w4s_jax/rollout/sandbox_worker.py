"""The process that runs untrusted workflow code (inside bubblewrap). Standard library only.

Protocol with the parent service: JSON lines on fds 0 (parent -> worker) and 1 (worker -> parent), which
are moved to private descriptors at start so that prints of the workflow never reach them. The worker
says `hello` once started; the parent sends one `init` message (code, items, limits), answered by `ready`
or `fatal`, then the worker sends a `call` per `agent.call_*` (answered by `reply`), a `result` per item
and `done` at the end.
"""
from __future__ import annotations

import concurrent.futures
import io
import itertools
import json
import os
import resource
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_api import Agent, ExecutorUnavailable  # noqa: E402
from codeexec import CodeRunner  # noqa: E402

MAX_ANSWER_CHARS = 100_000


class _Sink(io.TextIOBase):
    """sys.stdout / sys.stderr of the workflow: output is counted and dropped (flooding costs nothing)."""

    def write(self, s):
        return len(s)

    def flush(self):
        pass


class Channel:
    def __init__(self, rfd: int, wfd: int):
        self._r = os.fdopen(rfd, "rb", buffering=1 << 16)
        self._wfd = wfd
        self._wlock = threading.Lock()

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg, ensure_ascii=False, default=str) + "\n").encode("utf-8", "replace")
        with self._wlock:
            while data:
                data = data[os.write(self._wfd, data):]

    def recv(self) -> dict | None:
        line = self._r.readline()
        return json.loads(line) if line else None


class Worker:
    def __init__(self, ch: Channel, init: dict):
        self.ch = ch
        self.init = init
        self.tl = threading.local()
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.pending: dict[int, list] = {}
        self.running: dict[int, dict] = {}   # item index -> timing state
        self.reported: set[int] = set()
        self.sent = 0
        self.n_items = len(init["items"])
        self.all_done = threading.Event()
        self.item_timeout = float(init.get("item_timeout_s", 120.0))
        self.runner: CodeRunner | None = None

    # ----- transport used by Agent
    def current_item(self):
        return getattr(self.tl, "item", None)

    def call(self, request: dict) -> list:
        item = self.current_item()
        rid = next(self.ids)
        # A held lock as a one-shot event: the reader releases it. Cheaper than threading.Event,
        # which matters at hundreds of calls per second.
        ev = threading.Lock()
        ev.acquire()
        slot = [ev, None]
        self.pending[rid] = slot
        st = self.running.get(item) if item is not None else None
        t0 = time.monotonic()
        if st is not None:
            st["calls_open"] += 1
        try:
            self.ch.send({"t": "call", "id": rid, "item": item, "req": request})
            ev.acquire()
        finally:
            if st is not None:  # time spent waiting on the API is not the workflow's to pay for
                st["api_wait"] += time.monotonic() - t0
                st["calls_open"] -= 1
        rep = slot[1]
        if rep.get("ok"):
            return rep["contents"]
        if rep.get("kind") == "infra":
            raise ExecutorUnavailable(rep.get("error", "executor unavailable"))
        raise ValueError(rep.get("error", "the executor rejected the request"))

    def execute(self, code: str, timeout: float):
        return self.runner.execute(code, timeout)

    # ----- control loop
    def read_loop(self) -> None:
        while True:
            try:
                msg = self.ch.recv()
            except (ValueError, OSError):
                msg = None
            if msg is None:  # parent gone: nothing left to do
                os._exit(3)
            if msg.get("t") == "reply":
                slot = self.pending.pop(msg.get("id"), None)
                if slot is not None:
                    slot[1] = msg
                    slot[0].release()

    def report(self, idx: int, **fields) -> None:
        with self.lock:
            if idx in self.reported:
                return
            self.reported.add(idx)
            st = self.running.pop(idx, None)
        lat = time.monotonic() - st["start"] if st else None
        self.ch.send({"t": "result", "item": idx, "latency_s": lat, **fields})
        # Counted once sent, not once claimed: `done` must not overtake a result still being written.
        with self.lock:
            self.sent += 1
            done = self.sent == self.n_items
        if done:
            self.all_done.set()

    def run_item(self, idx: int, question, solver, agent) -> None:
        self.tl.item = idx
        try:
            answer = solver(agent, question)
        except ExecutorUnavailable as e:
            self.report(idx, infra=str(e))
            return
        except BaseException as e:  # SystemExit / KeyboardInterrupt from workflow code are its errors too
            # Free the workflow's locals first (after a MemoryError they are what holds the memory).
            traceback.clear_frames(e.__traceback__)
            try:
                text = describe_exception(e)
            except BaseException:
                text = type(e).__name__
            self.report(idx, error=text)
            return
        try:
            value = answer if len(json.dumps(answer)) <= MAX_ANSWER_CHARS else repr(answer)
        except (TypeError, ValueError, RecursionError):
            value = repr(answer)
        if isinstance(value, str) and len(value) > MAX_ANSWER_CHARS:
            value = value[:MAX_ANSWER_CHARS]  # answers are short; a huge one is cut, not a protocol error
        self.report(idx, answer=value)

    def pool_loop(self, queue, solver, agent) -> None:
        while True:
            with self.lock:
                if not queue:
                    return
                idx, question = queue.pop()
                self.running[idx] = {"start": time.monotonic(), "api_wait": 0.0, "calls_open": 0}
            self.run_item(idx, question, solver, agent)

    def spawn(self, queue, solver, agent) -> None:
        t = threading.Thread(target=self.pool_loop, args=(queue, solver, agent), daemon=True)
        t.start()

    def monitor(self, queue, solver, agent, spare_threads: int) -> None:
        """Report items that ran too long (API waits excluded); replace their stuck threads."""
        while not self.all_done.wait(0.1):
            now = time.monotonic()
            late = []
            with self.lock:
                for idx, st in self.running.items():
                    if st["calls_open"] == 0 and now - st["start"] - st["api_wait"] > self.item_timeout:
                        late.append(idx)
            for idx in late:
                self.report(idx, error=f"TimeoutError: the item ran longer than {self.item_timeout:g} s "
                                       "(time waiting on the executor API not counted)")
                if spare_threads > 0 and queue:
                    spare_threads -= 1
                    self.spawn(queue, solver, agent)


def describe_exception(e: BaseException) -> str:
    """Type, message and where in the workflow it was raised."""
    where = ""
    for fs in reversed(traceback.extract_tb(e.__traceback__)):
        if fs.filename == "<workflow>":
            where = f" (workflow line {fs.lineno}, in {fs.name})"
            break
    text = f"{type(e).__name__}: {e}{where}"
    return text if len(text) <= 2000 else text[:2000] + "..."


def _thread_attribution(worker: Worker) -> None:
    """Threads and pool tasks a workflow starts inherit the item of the thread that started them, so that
    each executor call is charged (and any outage blamed) to the right item."""
    # _bootstrap_inner rather than run: subclasses that override run() are covered too.
    orig_init, orig_boot = threading.Thread.__init__, threading.Thread._bootstrap_inner

    def init(self, *a, **kw):
        orig_init(self, *a, **kw)
        self._w4s_item = worker.current_item()

    def boot(self):
        if getattr(self, "_w4s_item", None) is not None:
            worker.tl.item = self._w4s_item
        orig_boot(self)

    threading.Thread.__init__, threading.Thread._bootstrap_inner = init, boot
    orig_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self, fn, /, *args, **kwargs):
        item = worker.current_item()

        def wrapped(*a, **k):
            prev = worker.current_item()
            worker.tl.item = item
            try:
                return fn(*a, **k)
            finally:
                worker.tl.item = prev
        return orig_submit(self, wrapped, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit


def _apply_limits(lim: dict) -> None:
    def setl(which, value):
        if value:
            resource.setrlimit(which, (int(value), int(value)))
    setl(resource.RLIMIT_AS, lim.get("memory_bytes"))
    setl(resource.RLIMIT_CPU, lim.get("cpu_s"))
    setl(resource.RLIMIT_FSIZE, lim.get("file_bytes"))
    setl(resource.RLIMIT_NPROC, lim.get("nproc"))
    setl(resource.RLIMIT_NOFILE, lim.get("open_files"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    # Private copies of the control pipes; 0/1/2 then point elsewhere so the workflow cannot print into them.
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    ch = Channel(rfd, wfd)
    ch.send({"t": "hello"})  # started and imported: a pool may now hand this worker out
    init = ch.recv()
    if not init or init.get("t") != "init":
        sys.exit("sandbox worker: expected an init message")
    uid = init.get("uid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if init.get("require_unprivileged") and (os.getuid() == 0 or os.geteuid() == 0):
        ch.send({"t": "fatal", "error": "sandbox: the worker is still root after dropping privileges"})
        os._exit(2)
    lim = init.get("limits", {})
    _apply_limits(lim)
    threading.stack_size(int(lim.get("thread_stack_bytes", 8 << 20)))
    runner = CodeRunner(max_parallel=int(lim.get("exec_parallel", 2)), mem_bytes=int(lim.get("exec_memory_bytes", 0)))
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.stdout, sys.stderr = _Sink(), _Sink()
    worker = Worker(ch, init)
    worker.runner = runner
    # Started with -S: installed packages become importable here, for the workflow only.
    sys.path.extend(p for p in init.get("import_paths", ()) if isinstance(p, str) and p not in sys.path)
    ns = {"__name__": "workflow"}
    try:
        exec(compile(init["code"], "<workflow>", "exec"), ns)
    except BaseException as e:
        ch.send({"t": "fatal", "error": "the workflow code raised while being loaded: " + describe_exception(e)})
        os._exit(2)
    solver = ns.get("solver")
    if not callable(solver):
        ch.send({"t": "fatal", "error": "the workflow code defines no function named `solver`"})
        os._exit(2)
    _thread_attribution(worker)
    runner.start()
    threading.Thread(target=worker.read_loop, name="ctl-reader", daemon=True).start()
    ch.send({"t": "ready"})
    agent = Agent(worker)
    queue = [(it["i"], it["question"]) for it in reversed(init["items"])]
    n_threads = max(1, min(int(init.get("threads", 16)), len(queue)))
    for _ in range(n_threads):
        worker.spawn(queue, solver, agent)
    if worker.n_items:
        worker.monitor(queue, solver, agent, int(init.get("spare_threads", 16)))
    r = resource.getrusage(resource.RUSAGE_SELF)
    ch.send({"t": "done", "cpu_s": r.ru_utime + r.ru_stime})
    os._exit(0)


if __name__ == "__main__":
    main()

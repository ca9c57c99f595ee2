"""One benchmark function in a fresh Python process: it has the accelerator's memory to itself (its peak
memory figure owes nothing to what ran before) and its own time limit. Its log lines are passed on as
they come; its result comes back as JSON.

    run_isolated("w4s_jax.bench.train:run_accelerator", {"model": "tiny", ...}, timeout_s=300)
    python -m w4s_jax.bench.isolated MODULE:FUNCTION 'JSON kwargs'     # what the child runs
"""
from __future__ import annotations

import collections
import importlib
import json
import os
import signal
import subprocess
import sys
import threading

_RESULT = "RESULT "


def _jsonable(x):
    return x.item() if hasattr(x, "item") else str(x)


def run_isolated(target: str, kwargs: dict, *, timeout_s: float, env: dict | None = None, log=print) -> dict:
    """`module:function(**kwargs, log=...)` in a child process. Its result, or {"error": why} when it failed,
    was killed at `timeout_s` ("timed_out": true) or printed no result."""
    proc = subprocess.Popen([sys.executable, "-m", "w4s_jax.bench.isolated", target, json.dumps(kwargs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=env)
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    result, tail = None, collections.deque(maxlen=20)
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(_RESULT):
                result = json.loads(line[len(_RESULT):])
            else:
                tail.append(line)
                log(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if timed_out.is_set():
        return {"error": f"killed after the time limit of {timeout_s:.0f} s", "timed_out": True}
    if proc.returncode != 0 or result is None:
        last = next((s for s in reversed(tail) if s.strip()), "no output")
        return {"error": f"exit status {proc.returncode}: {last[:500]}"}
    return result


def main(argv: list[str]) -> None:
    target, kwargs = argv[0], json.loads(argv[1])
    module, function = target.split(":")
    fn = getattr(importlib.import_module(module), function)
    result = fn(**kwargs, log=lambda s: print(s, flush=True))
    print(_RESULT + json.dumps(result, default=_jsonable), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

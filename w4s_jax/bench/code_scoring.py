"""Code-scoring speed: the canonical HumanEval solutions scored concurrently in sandboxed workers
(`CodeScorer`: one bubblewrap worker, each test program in a forked `execute_code` child, `parallel` at once)
against a plain scorer that runs one fresh interpreter per item, in sequence, with the same test programs
and timeout (what a simple harness does), in the same run, repetitions interleaved.

Both must agree item by item (every canonical solution passes); the figures are seconds per pass over the
items, the speed-up, and the machine's load (w4s_jax/bench/timing.py).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile

from w4s_jax import tasks
from w4s_jax.tasks.code_scoring import CodeScorer, test_program

from .config import write_results
from .timing import LoadWatch, fmt_spread, interleaved, speedup


def sequential_subprocess(items, timeout_s: float) -> list[bool]:
    """The reference: `python -I file.py` per item, one after another; passed = exit status 0 in time."""
    out = []
    with tempfile.TemporaryDirectory(prefix="w4s-bench-code-") as tmp:
        for k, it in enumerate(items):
            path = os.path.join(tmp, f"item{k}.py")
            with open(path, "w") as f:
                f.write(test_program(it.answer, it))
            try:
                p = subprocess.run([sys.executable, "-I", path], cwd=tmp, capture_output=True, timeout=timeout_s,
                                   stdin=subprocess.DEVNULL)
                out.append(p.returncode == 0)
            except subprocess.TimeoutExpired:
                out.append(False)
    return out


def sandboxed(items, scorer: CodeScorer) -> list[bool]:
    return [o.passed for o in asyncio.run(scorer.run([it.answer for it in items], items))]


def run(*, task: str, data_dir: str | None, limit: int, reps: int, timeout_s: float, parallel: int,
        log=print) -> dict:
    t = tasks.get(task, data_dir)
    items = (t.items("valid") + t.items("test"))
    items = items[:limit] if limit else items
    ours = CodeScorer(timeout_s=timeout_s, parallel=parallel)
    serial = CodeScorer(timeout_s=timeout_s, parallel=1)
    log(f"{task}: {len(items)} canonical solutions; sandboxed with {ours.workers} at once vs one interpreter per "
        f"item in sequence; {reps} interleaved repetitions")
    # Correctness first (and the warm-up): both scorers pass every canonical solution.
    checks = {"sandboxed": sandboxed(items, ours), "sequential_subprocess": sequential_subprocess(items, timeout_s)}
    for name, passed in checks.items():
        failed = [it.id for it, ok in zip(items, passed) if not ok]
        if failed:
            raise RuntimeError(f"{name}: canonical solutions failed: {failed[:10]}")
    watch = LoadWatch()
    times = interleaved({"sandboxed_concurrent": lambda: sandboxed(items, ours),
                         "sandboxed_one_at_a_time": lambda: sandboxed(items, serial),
                         "sequential_subprocess": lambda: sequential_subprocess(items, timeout_s)},
                        reps=reps, warmup=0)
    load = watch.finish(log)
    res = {"task": task, "items": len(items), "parallel": ours.workers, "cpus": os.cpu_count(),
           "seconds": {k: v.seconds() for k, v in times.items()},
           "items_per_s": {k: v.rate(len(items)) for k, v in times.items()},
           "speedup_vs_sequential_subprocess": speedup(times["sandboxed_concurrent"], times["sequential_subprocess"]),
           "speedup_one_at_a_time_vs_sequential_subprocess":
               speedup(times["sandboxed_one_at_a_time"], times["sequential_subprocess"]),
           "load": load}
    for k, v in times.items():
        log(f"  {k}: {fmt_spread(v.seconds())} s")
    log(f"  speed-up of the concurrent sandboxed scorer: {fmt_spread(res['speedup_vs_sequential_subprocess'])}x")
    return res


def main(config) -> None:
    """launch/bench_code_scoring.py: configs/bench_code_scoring.py's keys."""
    write_results(config, run(task=config.task, data_dir=config.data_dir or None, limit=config.limit,
                              reps=config.reps, timeout_s=config.timeout_s, parallel=config.parallel))

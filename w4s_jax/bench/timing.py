"""Timing helpers shared by the benchmarks: warm-up, interleaved repetitions, medians."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def time_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], *, reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, run in turn (A, B, A, B, ...) so that load from other
    processes falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(time_call(fn))
    return {k: statistics.median(v) for k, v in times.items()}

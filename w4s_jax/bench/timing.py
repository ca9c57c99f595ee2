"""The one timing helper of the benchmarks: interleaved repetitions with min/median/max, and the machine's
load before and after, so a figure measured while other work ran is marked as not to be trusted."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by another process (a server), all its threads: from the scheduler's
    nanosecond counters (/proc/<pid>/task/*/schedstat), or the 10 ms ticks of /proc/<pid>/stat where the
    kernel keeps no schedstat. Threads that ended are counted by neither (ours run to the end)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values) -> dict:
    """min, median and max of a figure over repetitions."""
    values = list(values)
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def fmt_spread(s: dict, digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f})"


@dataclass
class Timing:
    """Seconds of each repetition of one side."""
    samples: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def seconds(self) -> dict:
        return {**spread(self.samples), "reps": len(self.samples)}

    def rate(self, work: float) -> dict:
        """`work` per second: min, median and max over the repetitions."""
        return {**spread(work / t for t in self.samples), "reps": len(self.samples)}

    def fraction_of_peak(self, work: float, peak_per_s: float | None) -> dict | None:
        """(`work` per second) / `peak_per_s`: MFU for FLOPs, the roofline fraction for bytes."""
        if not peak_per_s:
            return None
        return spread(work / t / peak_per_s for t in self.samples)


def speedup(ours: Timing, reference: Timing) -> dict:
    """How many times faster ours is: reference / ours within each interleaved repetition, min/median/max."""
    return spread(r / o for o, r in zip(ours.samples, reference.samples))


def time_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], *, reps: int, warmup: int = 1) -> dict[str, Timing]:
    """Each function `reps` times, in turn (A, B, A, B, ...), so that load from other processes falls on all
    sides alike; `warmup` untimed rounds first (compilation, caches, connection pools)."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: Timing() for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].samples.append(time_call(fn))
    return times


class LoadWatch:
    """The 1/5/15-minute load averages when a benchmark starts and ends, and whether the run was quiet.

    A run is trusted when the 1-minute load before it was at most `quiet_per_core` per core (nothing else
    was running) and the load after it exceeds what the benchmark itself can add (one per core) by no
    more than that (nothing else started meanwhile). Figures for the README come from trusted runs only.
    """

    def __init__(self, quiet_per_core: float = 0.25):
        self.cpus = os.cpu_count() or 1
        self.limit = quiet_per_core * self.cpus
        self.before = os.getloadavg()

    def finish(self, log=print) -> dict:
        after = os.getloadavg()
        trusted = self.before[0] <= self.limit and after[0] <= self.cpus + self.limit
        out = {"before": [round(x, 2) for x in self.before], "after": [round(x, 2) for x in after],
               "cpus": self.cpus, "trusted": trusted}
        if not trusted:
            out["note"] = (f"too loaded to trust: 1-min load {self.before[0]:.2f} before and {after[0]:.2f} after "
                           f"on {self.cpus} cores (quiet: at most {self.limit:.2f} before, "
                           f"{self.cpus + self.limit:.2f} after)")
            log(f"WARNING: {out['note']}")
        return out

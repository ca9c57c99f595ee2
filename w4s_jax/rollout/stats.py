"""Confidence intervals for accuracies (numpy only; no JAX on the rollout side)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def bootstrap_ci(scores: Sequence[float], *, confidence: float = 0.95, resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item scores (the interval ADAS and W4S report).

    Deterministic for a given seed. One item gives a zero-width interval; no items is an error.
    """
    x = np.asarray(list(scores), dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("bootstrap_ci: needs a non-empty list of scores")
    if not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_ci: scores must be finite numbers")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"bootstrap_ci: resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    # In blocks, so that a large benchmark never needs a resamples x n index matrix at once.
    block = max(1, (1 << 22) // x.size)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)

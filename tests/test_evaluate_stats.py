"""bootstrap_ci against scipy.stats.bootstrap (percentile method) and the normal approximation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from w4s_jax.rollout.stats import bootstrap_ci


@pytest.mark.parametrize("n,p", [(33, 0.7), (128, 0.5), (800, 0.85)])
def test_matches_scipy_percentile_bootstrap_and_the_normal_approximation(n, p):
    x = (np.random.default_rng(n).random(n) < p).astype(float)
    lo, hi = bootstrap_ci(x, seed=1)
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=10_000, random_state=2).confidence_interval
    # two independent 10k-resample estimates of the same quantiles: within a few resampling standard errors
    half = math.sqrt(x.mean() * (1 - x.mean()) / n)
    assert abs(lo - ref.low) < 0.25 * half + 1 / n and abs(hi - ref.high) < 0.25 * half + 1 / n
    assert abs((hi - lo) - 2 * 1.96 * half) < 0.35 * half + 2 / n
    assert lo <= x.mean() <= hi


def test_deterministic_per_seed_and_edge_cases():
    x = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.5]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0) and bootstrap_ci([0.25]) == (0.25, 0.25)
    assert bootstrap_ci(x, confidence=0.5)[1] - bootstrap_ci(x, confidence=0.5)[0] < bootstrap_ci(x)[1] - bootstrap_ci(x)[0]
    for bad, msg in (([], "non-empty"), ([1.0, float("nan")], "finite")):
        with pytest.raises(ValueError, match=msg):
            bootstrap_ci(bad)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(x, confidence=1.0)

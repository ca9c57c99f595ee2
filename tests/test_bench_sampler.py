"""launch/bench_sampler.py on the tiny model (configs/bench_sampler.py:tiny): figures that can fail. (Its
accelerator mode against the roofline: tests/test_bench_gpu.py.)"""
import pytest

from bench_support import run_bench
from w4s_jax.bench import sampler


@pytest.mark.slow
def test_reference_mode_beats_transformers_generate(tmp_path):
    res = run_bench(sampler.main, "bench_sampler", "tiny", tmp_path, reps=2)
    assert res["config"]["preset"] == "tiny" and res["n"] == 5 and res["new_tokens"] == 16
    # Our compiled decode loop against transformers' per-token Python loop on a 0.1M-parameter model: 5-9x
    # measured quietly on 2 cores (2026-12-03), and once below 2x while the machine was busy: the check is only
    # that ours is faster.
    assert res["speedup"]["median"] >= 1.2
    assert res["ours_prefill_s"]["median"] < res["ours_total_s"]["median"]
    assert set(res["load"]) >= {"before", "after", "trusted"}


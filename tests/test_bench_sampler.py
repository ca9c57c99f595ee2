"""launch/bench_sampler.py on the tiny model (configs/bench_sampler.py:tiny): figures that can fail."""
import pytest

from bench_support import run_bench
from w4s_jax.bench import sampler
from w4s_jax.flops import decode_bytes_per_step
from w4s_jax.models import get_preset


def test_reference_mode_beats_transformers_generate(tmp_path):
    res = run_bench(sampler.main, "bench_sampler", "tiny", tmp_path, reps=2)
    assert res["config"]["preset"] == "tiny" and res["n"] == 5 and res["new_tokens"] == 16
    # Our compiled decode loop against transformers' per-token Python loop on a 0.1M-parameter model: 60x
    # measured at load 5 on 2 cores; 2x leaves room for any load, since the sides are interleaved.
    assert res["speedup"]["median"] >= 2.0
    assert res["ours_prefill_s"]["median"] < res["ours_total_s"]["median"]
    assert set(res["load"]) >= {"before", "after", "trusted"}


def test_accelerator_mode_stays_under_the_bandwidth_roofline(tmp_path):
    # 10 TB/s is more than any CPU reads even from cache: a step faster than that roofline would mean the
    # byte count (w4s_jax/flops.py) or the step timing is wrong.
    res = run_bench(sampler.main, "bench_sampler", "accelerator", tmp_path, model="tiny", dtype="float32",
                    prompt_len=50, new_tokens=8, reps=2, hbm_gbps=10_000.0)
    cfg = get_preset("tiny")
    nbytes = decode_bytes_per_step(cfg, rows=5, prompt_len=50, new_tokens=8, param_bytes=4, cache_bytes=4)
    assert res["bytes_per_step"] == nbytes
    assert 0 < res["roofline_fraction"]["max"] < 1.0
    fastest_step_s = res["step_ms"]["min"] / 1e3
    assert res["roofline_fraction"]["max"] == pytest.approx(nbytes / 10_000e9 / fastest_step_s, rel=1e-6)
    assert res["decode_tok_s"]["max"] == pytest.approx(5 / fastest_step_s, rel=1e-6)

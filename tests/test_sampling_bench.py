"""The sampler benchmark's code paths, on the tiny preset (the figures themselves come from the script)."""
import pytest

from w4s_jax.models import get_preset
from w4s_jax.sampling import bench


def test_bandwidth_bound_bytes_for_qwen25_7b():
    cfg = get_preset("qwen2.5-7b")
    got = bench.decode_bytes_per_step(cfg, rows=5, prompt_len=4096, new_tokens=513, param_bytes=2, cache_bytes=2)
    # Untied: the 152064 x 3584 input table is gathered (5 rows), not read; the output head is read whole.
    weights = (cfg.num_params() - 152064 * 3584) * 2
    kv = 2 * 28 * 5 * (4096 + 256) * 4 * 128 * 2
    assert got == weights + kv
    assert 14.0e9 < weights < 14.5e9
    tied = get_preset("qwen2.5-0.5b")
    assert bench.decode_bytes_per_step(tied, rows=1, prompt_len=1, new_tokens=1, param_bytes=2, cache_bytes=0) \
        == tied.num_params() * 2


def test_accelerator_mode_runs_on_cpu_with_a_tiny_preset():
    lines = []
    # The shapes of tests/test_sampling.py's prefill test: the compiled programs are shared.
    res = bench.run_accelerator(preset="tiny", dtype="float32", prompt_len=50, n=5, new_tokens=8, reps=1,
                                hbm_gbps=10.0, log=lines.append)
    assert res["decode_tok_s"] > 0 and res["step_ms"] > 0 and 0 < res["bandwidth_fraction"]
    assert "of the bound" in lines[-1]


@pytest.mark.slow
def test_reference_mode_against_transformers_on_a_tiny_preset():
    lines = []
    res = bench.run_reference(preset="tiny", prompt_len=50, n=5, new_tokens=8, reps=1, log=lines.append)
    for key in ("ours_decode_tok_s", "hf_decode_tok_s", "speedup", "ours_compile_s", "ours_prefill_s"):
        assert res[key] == res[key] and res[key] != 0, key
    assert "decode tokens/s" in lines[1]

"""launch/bench_serve.py on the tiny model (configs/bench_serve.py:tiny): the three sides do equal work, the
burst is one sampler call, and nothing compiles after warm-up. (Speed figures come from the script's cpu
preset, not from a test.)"""
from bench_support import run_bench
from w4s_jax.bench import serve


def test_bench_serve_small(tmp_path):
    res = run_bench(serve.main, "bench_serve", "tiny", tmp_path)
    assert res["config"]["preset"] == "tiny" and res["requests"] == 4 and res["n"] == 2
    assert res["same_replies"] and not res["recompiled_in_steady_state"]
    assert res["sampler_calls"] == {"concurrent": [1], "sequential": [4]}
    assert 0 < res["completion_tokens"] <= 4 * 2 * 16
    for key in ("concurrent_tok_s", "sequential_tok_s", "direct_tok_s", "concurrent_vs_sequential",
                "server_overhead"):
        assert set(res[key]) >= {"min", "median", "max"}
    assert set(res["load"]) >= {"before", "after", "trusted"}

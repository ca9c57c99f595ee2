"""launch/bench_rollout.py at a small scale (configs/bench_rollout.py:small): its figures against what the
setting allows. Ideal: 2 x 8 items x 2 calls of 0.2 s, 16 in flight -> 0.4 s; the public W4S scheme, two
candidates in sequence with 4 threads -> 1.6 s."""
from __future__ import annotations

import pytest

from bench_support import run_bench
from test_rollout_support import sandbox_or_skip
from w4s_jax.bench import rollout

pytestmark = pytest.mark.timeout(300)


def test_bench_rollout_small_run(tmp_path):
    sandbox_or_skip()
    res = run_bench(rollout.main, "bench_rollout", "small", tmp_path)
    assert res["config"]["preset"] == "small"
    (run,) = res["runs"]
    for batch in ("first_batch", "steady_state"):
        b = run[batch]
        assert b["http_requests"] == 2 * 8 * 2 and b["infra_errors"] == 0 and b["accuracy"] == [1.0, 1.0]
        assert res[batch]["ideal_s"] == pytest.approx(0.4)
        assert res[batch]["efficiency"]["max"] <= 1.0
    assert res["w4s_public_scheme"]["ideal_s"] == pytest.approx(1.6)
    assert res["w4s_public_scheme"]["wall_s"]["min"] >= 1.6  # no schedule beats its latency floor
    # Started workers and concurrency: the steady state reaches a third of the ideal even on a loaded 2-core
    # box (0.8 measured at load 6.5), and beats the public scheme by more than 1.5x of its 4x ideal ratio.
    assert res["steady_state"]["efficiency"]["median"] >= 0.33
    assert res["speedup_vs_w4s_steady_state"]["median"] >= 1.5
    assert max(run["steady_state"]["spawn_to_ready_s"]) < 1.0  # workers came started from the pool
    # Client CPU per call is CPU time, not wall time: our Executor costs well under half of the SDK's.
    cpu = res["client_cpu_ms_per_call"]
    assert set(cpu) == {"sdk_httpx", "sdk_aiohttp", "ours_executor"}
    assert 0 < cpu["ours_executor"] < 0.5 * cpu["sdk_httpx"]
    assert res["sandbox"]["execute_code_ok"] and res["sandbox"]["execute_code_calls_per_s"] > 0
    assert set(res["load"]) >= {"before", "after", "trusted"}

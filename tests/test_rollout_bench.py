"""launch/bench_rollout.py at a small scale: it runs end to end and its figures are consistent."""
from __future__ import annotations

import pytest

from test_rollout_support import sandbox_or_skip
from w4s_jax.rollout import bench

pytestmark = pytest.mark.timeout(300)


def test_bench_rollout_small_run():
    sandbox_or_skip()
    res = bench.run(latency_s=0.2, candidates=2, items=8, calls=2, concurrency=8, w4s_threads=4, cpu_calls=50,
                    sandbox_reps=1, exec_calls=64, log=lambda *a: None)
    for batch in ("first_batch", "steady_state"):
        b = res["ours"][batch]
        assert b["http_requests"] == 2 * 8 * 2 and b["infra_errors"] == 0 and b["accuracy"] == [1.0, 1.0]
        assert b["ideal_s"] == pytest.approx(2 * 8 * 2 * 0.2 / 8)
        assert 0 < b["efficiency"] <= 1.0
        assert res[f"speedup_vs_w4s_{batch}"] > 0
    # the steady-state batch got started workers from the pool: far less than a spawn each
    assert max(res["ours"]["steady_state"]["spawn_to_ready_s"]) < 1.0
    cpu = res["client_cpu_ms_per_call"]
    assert set(cpu) == {"sdk_httpx", "sdk_aiohttp", "ours_executor"} and all(v > 0 for v in cpu.values())
    assert res["sandbox"]["execute_code_ok"] and res["sandbox"]["execute_code_calls_per_s"] > 0

"""launch/bench_sim.py at its small preset: every server measured on the same requests, figures that can fail."""
from __future__ import annotations

import pytest
from bench_support import run_bench

from w4s_jax.bench import sim

pytestmark = pytest.mark.timeout(300)


def test_bench_sim_small_preset(tmp_path):
    out = run_bench(sim.main, "bench_sim", "small", tmp_path)
    setting = out["setting"]
    for p in sim.PASSES:    # votes ask for n > 1
        assert setting["requests"][p] > 50 and setting["completions"][p] > setting["requests"][p], p
    assert setting["other_workflows"] == 3
    for name in ("scripted", "scripted_same_size", "simulated"):
        for p in sim.PASSES:
            figure = out[name][p]["ms_per_request"]["median"]
            assert 0 <= figure < 20, (name, p, figure)        # milliseconds of server CPU per request
    assert out["simulated_over_scripted"]["second_pass"]["median"] < 10
    assert "trusted" in out["load"]


def test_bench_sim_bad_reference_tree_is_one_clear_error(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo))    # this checkout's package, whatever is installed
    out = subprocess.run([sys.executable, "launch/bench_sim.py", "--config=configs/bench_sim.py:small",
                          f"--config.workdir={tmp_path}", f"--config.reference_tree={tmp_path / 'nowhere'}"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "reference_tree" in out.stderr and "nowhere" in out.stderr and "Traceback" not in out.stderr

"""launch/optimize.py's logic: the search sees only the valid split; the workflow chosen by validation is
scored once on test; summary.json has the DESIGN.md shape; a rerun reuses the test score."""
import asyncio
import json
import sys
from pathlib import Path

import env_support as es
from test_rollout_support import sandbox_or_skip
from w4s_jax.rollout.optimize import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "configs"))
import optimize as optimize_config  # noqa: E402


def test_optimize_valid_only_then_test_once(tmp_path):
    sandbox_or_skip()
    ex, ma = es.start_servers()
    try:
        c = optimize_config.get_config()
        c.workdir, c.task, c.turns, c.candidates, c.window = str(tmp_path), "env_support:make_task", 3, 3, 5
        c.executor.base_url, c.executor.model = ex.base_url, "sim"
        c.meta_agent.base_url, c.meta_agent.model = ma.base_url, "scripted-meta"
        c.sandbox.pool_size, c.progress, c.label = 4, False, "scripted"
        summary = asyncio.run(optimize(c))
        n_requests = ex.stats["requests"]
        again = asyncio.run(optimize(c))                 # a rerun: nothing left to do, test score reused
        assert ex.stats["requests"] == n_requests and again == {"scripted": {**summary["scripted"],
                                                                             "wall_s": again["scripted"]["wall_s"]}}
        bodies = [json.dumps(b) for b in ex.requests_log]
        meta_text = es.all_request_text(ma)
    finally:
        ex.stop()
        ma.stop()
    e = summary["scripted"]
    assert e["best_valid_acc_per_turn"] == [0.75, 0.75, 1.0]
    assert e["best_source"] == "env_arith-opt-s0-000 turn 2 candidate 1" and e["valid_n"] == 16
    assert e["test_acc"] == 1.0 and e["test_n"] == 16 and e["test_ci95"] == [1.0, 1.0]
    assert "LEVEL 8" in (tmp_path / "best_workflow.py").read_text()
    # every executor request about a test item comes from the one final evaluation of the chosen workflow
    test_bodies = [b for b in bodies if any(f"Question {k}:" in b for k in es.TEST)]
    assert len(test_bodies) == 16 and all("LEVEL 8" in b for b in test_bodies)
    assert all(f"Question {k}:" not in meta_text for k in es.TEST)
    assert all(f"Question {k}:" not in b for b in bodies for k in es.TRAIN)   # the search used valid items

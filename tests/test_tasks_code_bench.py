"""launch/bench_code_scoring.py at a small scale: both scorers agree on the canonical solutions and the
result file holds the figures (no timing assertions: figures come from the script, not from tests)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from test_rollout_support import sandbox_or_skip
from w4s_jax.bench import code_scoring

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_small_preset_scores_both_ways_and_writes_its_results(tmp_path):
    sandbox_or_skip()
    if not (DATA / "humaneval_test.jsonl").is_file():
        pytest.skip(f"benchmark files not found in {DATA}")
    spec = importlib.util.spec_from_file_location("bench_code_scoring_config", REPO / "configs" / "bench_code_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config("small")
    cfg.data_dir, cfg.workdir, cfg.limit = str(DATA), str(tmp_path), 4
    code_scoring.main(cfg)
    out = json.loads((tmp_path / "bench_code_scoring.json").read_text())
    assert out["items"] == 4 and out["config"]["preset"] == "small"
    assert set(out["seconds"]) == {"sandboxed_concurrent", "sandboxed_one_at_a_time", "sequential_subprocess"}
    assert out["speedup_vs_sequential_subprocess"]["median"] > 0 and "trusted" in out["load"]

"""launch/bench_collect.py at a small scale: a turn costs about its slowest candidate, not the sum."""
import json
import subprocess
import sys
from pathlib import Path

from test_rollout_support import sandbox_or_skip

ROOT = Path(__file__).resolve().parents[1]


def test_turn_costs_about_its_slowest_candidate(tmp_path):
    sandbox_or_skip()
    p = subprocess.run([sys.executable, str(ROOT / "launch" / "bench_collect.py"),
                        "--config=configs/bench_collect.py:tiny", f"--config.workdir={tmp_path}", "--config.reps=2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "bench_collect.json").read_text())
    # the sum of the three candidates' spans would be about 2x the slowest; concurrency keeps it near 1
    assert res["turn_over_slowest"]["median"] < 1.3
    assert res["slowest_candidate_s"]["min"] >= res["slowest_candidate_floor_s"]
    assert res["collector_cpu_ms_per_candidate"]["median"] < 20

"""The embedded default end to end at a reduced size, through the command lines a user runs:
launch/quickstart.py (preset `small`) and launch/compare_objectives.py (preset `small`), both with the tiny
meta-agent built here into a temporary cache (the real build, shared by both tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_rollout_support import sandbox_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny meta-agent is the default one (built once into the module's cache, ~3 minutes on 2 cores): a
# smaller warm start writes no parseable workflow (60 steps: 0 of 32 samples parse), leaving RLAO nothing.


def _launch(script: str, *flags: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)    # the suite's eight fake devices: a user's run has one
    return subprocess.run([sys.executable, os.path.join(ROOT, "launch", script), *flags, "--config.progress=False"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    sandbox_or_skip()
    return str(tmp_path_factory.mktemp("w4s_cache"))


@pytest.mark.slow
def test_quickstart_small_end_to_end_and_rerun(tmp_path, cache_dir):
    workdir = tmp_path / "qs"
    flags = ["--config=configs/quickstart.py:small", f"--config.workdir={workdir}", f"--config.cache_dir={cache_dir}"]
    proc = _launch("quickstart.py", *flags)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert set(summary) == {"untrained", "trained"}
    for label, s in summary.items():
        assert len(s["best_valid_acc_per_turn"]) == 2          # small preset: 2 search turns
        assert all(0.0 <= a <= 1.0 for a in s["best_valid_acc_per_turn"])
        assert s["best_valid_acc_per_turn"] == sorted(s["best_valid_acc_per_turn"])  # best so far never drops
        assert 0.0 <= s["test_acc"] <= 1.0 and s["test_ci95"][0] <= s["test_acc"] <= s["test_ci95"][1]
        assert s["runs"] == 2 * 2 and sorted(s["test_acc_per_seed"]) == ["0", "1"]   # 2 tasks x 2 seeds
        assert set(s["test_acc_per_task"]) == {"synth_arith", "synth_units"} and s["items_valid"] == 8
        assert s["executor_calls"] > 0 and s["simulated_cost_usd"] > 0
    assert _is_png(workdir / "quickstart.png")
    table = (workdir / "table.txt").read_text()
    assert table.splitlines()[0].startswith("meta-agent") and "untrained" in table and "trained" in table
    assert table in proc.stdout
    report = json.loads((workdir / "report.json").read_text())
    assert set(report["technique_mix"]) == {"untrained", "trained"}
    assert {"meta_agent_build_s", "rlao_s", "search_s"} <= set(report["timings"])
    rounds = report["rlao"]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1] and os.path.isdir(report["policies"]["trained"])
    # the trained policy is round 1's export: 2 rounds x 8 steps of training
    assert report["policies"]["trained"].endswith(os.path.join("train", "policy", "16"))
    # exactly one meta-agent was built, into the given cache, and both runs' meta-agents are loadable HF dirs
    built = [d for d in os.listdir(os.path.join(cache_dir, "meta_agent")) if not d.startswith(".")]
    assert len(built) == 1 and report["policies"]["untrained"] == os.path.join(cache_dir, "meta_agent", built[0])
    assert os.path.isfile(os.path.join(report["policies"]["untrained"], "tokenizer.json"))

    # A rerun reuses the cached meta-agent and every finished stage: the same summary, quickly.
    again = _launch("quickstart.py", *flags)
    assert again.returncode == 0, again.stderr[-4000:]
    assert json.loads((workdir / "summary.json").read_text()) == summary
    assert json.loads((workdir / "report.json").read_text())["timings"]["meta_agent_build_s"] < 5


@pytest.mark.slow
def test_compare_objectives_small_writes_table_json_and_plot(tmp_path, cache_dir):
    workdir = tmp_path / "cmp"
    # dpo needs states whose candidates' rewards differ; a collection this small may have none, and then
    # training stops with exactly that message, so the pairwise objective is left to the default preset
    proc = _launch("compare_objectives.py", "--config=configs/compare_objectives.py:small",
                   f"--config.workdir={workdir}", f"--config.cache_dir={cache_dir}", "--config.objectives=rwr,awr")
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads((workdir / "compare.json").read_text())
    assert list(out["objectives"]) == ["rwr", "awr"] and out["seeds"] == 2
    for name, s in out["objectives"].items():
        assert 0.0 <= s["test_acc"] <= 1.0 and len(s["best_valid_acc_per_turn"]) == 2
        assert os.path.isdir(os.path.join(workdir, "train", name, "policy"))
    assert _is_png(workdir / "compare.png")
    table = (workdir / "table.txt").read_text()
    assert "rwr" in table and "awr" in table and table in proc.stdout


def test_missing_bubblewrap_is_one_clear_message(monkeypatch, capsys):
    import shutil

    from w4s_jax.cli import quickstart as cli

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    with pytest.raises(SystemExit) as e:
        cli.run(["quickstart.py", f"--config={os.path.join(ROOT, 'configs', 'quickstart.py')}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bubblewrap" in err[0] and "apt-get install bubblewrap" in err[0]

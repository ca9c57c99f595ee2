"""launch/collect.py end to end: kill -9 in the middle of a turn and rerun gives the uninterrupted run's
trajectories; what it writes, launch/train.py trains on."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import env_support as es
from test_rollout_support import sandbox_or_skip

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def collect_cmd(workdir, ex, ma):
    return [sys.executable, str(ROOT / "launch" / "collect.py"), f"--config.workdir={workdir}",
            "--config.task=env_support:make_task", "--config.eval_items=0", "--config.episodes=2",
            "--config.turns=3", "--config.candidates=3", "--config.window=5", "--config.sandbox.pool_size=4",
            f"--config.executor.base_url={ex.base_url}", "--config.executor.model=sim",
            f"--config.meta_agent.base_url={ma.base_url}", "--config.meta_agent.model=scripted-meta",
            "--config.progress=False"]


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def lines(path):
    return sorted(Path(path).read_text().splitlines())


@pytest.mark.slow
def test_kill_9_mid_turn_then_rerun_equals_an_uninterrupted_run(tmp_path):
    sandbox_or_skip()
    ex, ma = es.start_servers(latency_s=0.01)
    try:
        ref = tmp_path / "ref"
        p = subprocess.run(collect_cmd(ref, ex, ma), env=env(), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        assert summary["records"] == 2 * 3 * 3

        run = tmp_path / "killed"
        traj = run / "trajectories.jsonl"
        proc = subprocess.Popen(collect_cmd(run, ex, ma), env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and not (traj.exists() and traj.read_text().count("\n") >= 3):
            time.sleep(0.02)
        time.sleep(0.15)                                       # into the next turn, still in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        done = traj.read_text().count("\n")
        assert 3 <= done < 18, done                            # killed in the middle
        p = subprocess.run(collect_cmd(run, ex, ma), env=env(), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
    finally:
        ex.stop()
        ma.stop()
    assert lines(traj) == lines(ref / "trajectories.jsonl")

    # Round trip: the trainer reads what the collector wrote.
    wd = tmp_path / "train"
    p = subprocess.run([sys.executable, str(ROOT / "launch" / "train.py"), "--config=configs/train.py:tiny",
                        f"--config.workdir={wd}", f"--config.data.path={traj}", "--config.total_steps=2",
                        "--config.progress=False"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    metrics = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in m for m in metrics)
    assert (wd / "policy").exists()


def test_collect_cli_bad_input_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "launch" / "collect.py"), f"--config.workdir={tmp_path}",
                        "--config.task=no_such_task"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: unknown task 'no_such_task'")
    p = subprocess.run([sys.executable, str(ROOT / "launch" / "collect.py"), f"--config.workdir={tmp_path}",
                        "--config.shard=3/2"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "shard" in p.stderr

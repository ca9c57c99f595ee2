"""launch/rlao.py end to end on local servers: two rounds (collect with the served policy -> train -> export
-> collect with the new step); killed with SIGKILL inside the second round and rerun, the trajectories and
the final parameters equal those of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import env_support as es
from test_rollout_support import sandbox_or_skip

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def rlao_cmd(workdir, ckpt, ex):
    c = "--config.collect."
    return [sys.executable, str(ROOT / "launch" / "rlao.py"), "--config=configs/rlao.py:tiny",
            f"--config.workdir={workdir}", f"--config.initial_policy={ckpt}", "--config.rounds=2",
            "--config.steps_per_round=2", "--config.progress=False",
            f"{c}task=env_support:make_task", f"{c}eval_items=4", f"{c}episodes=1", f"{c}turns=1",
            f"{c}candidates=2", f"{c}repairs=0", f"{c}meta_agent.max_tokens=12", f"{c}sandbox.pool_size=2",
            f"{c}executor.base_url={ex.base_url}", f"{c}executor.model=sim", f"{c}progress=False",
            "--config.train.data.include_failed=True", "--config.train.batch_size=2", "--config.train.log_every=1",
            "--config.train.checkpoint.interval=1", "--config.train.mesh.devices=1"]


def env(cache_dir):
    # one persistent XLA cache for the four server and trainer processes of each run: the second run compiles
    # nothing, which keeps this test's time in check
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "JAX_COMPILATION_CACHE_DIR": str(cache_dir), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def trajectories(workdir):
    return [sorted((workdir / f"round-{r:02d}" / "collect" / "trajectories.jsonl").read_text().splitlines())
            for r in range(2)]


def params(workdir):
    d = workdir / "train" / "policy" / "4"
    return {k: v for f in sorted(d.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


@pytest.mark.slow
def test_two_rounds_killed_in_the_second_and_resumed_equal_an_uninterrupted_run(tmp_path):
    sandbox_or_skip()
    ckpt = tmp_path / "tiny-meta-agent"
    es.make_tiny_policy(ckpt)
    ex = es.SimServer(es.executor_reply).start()
    try:
        ref = tmp_path / "ref"
        p = subprocess.run(rlao_cmd(ref, ckpt, ex), env=env(tmp_path / 'xla-cache'), capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-4000:]
        summary = json.loads((ref / "rlao_summary.json").read_text())
        assert [r["round"] for r in summary["rounds"]] == [0, 1] and (ref / "rlao.png").stat().st_size > 0
        r1 = [json.loads(x) for x in trajectories(ref)[1]]
        assert {x["meta"]["policy_step"] for x in r1} == {2}       # round 1 sampled from the exported step

        run = tmp_path / "killed"
        proc = subprocess.Popen(rlao_cmd(run, ckpt, ex), env=env(tmp_path / 'xla-cache'), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        marker = run / "round-01" / "collect" / "run_info.json"
        deadline = time.time() + 400
        while time.time() < deadline and not marker.exists():
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert marker.exists() and not (run / "train" / "policy" / "4").exists()
        p = subprocess.run(rlao_cmd(run, ckpt, ex), env=env(tmp_path / 'xla-cache'), capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-4000:]
    finally:
        ex.stop()
    assert trajectories(run) == trajectories(ref)
    a, b = params(run), params(ref)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

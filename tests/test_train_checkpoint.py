"""Checkpoint safety: an interrupted async save leaves the previous step restorable; a flipped byte is
caught by the checksum manifest and the previous good step is used; SIGTERM saves and exits cleanly."""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train_fixtures import read_metrics  # (importing it also enables the compile cache)
from w4s_jax.train.checkpointing import MANIFEST, Checkpointer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _state(value, n=1000):
    return {"params": {"w": jnp.full((n, 100), value, jnp.float32)}, "step": jnp.int32(value)}


def _abstract(n=1000):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _state(0, n))


def test_kill_during_async_save_leaves_previous_step(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.join(REPO, 'tests')!r})
        import jax, jax.numpy as jnp
        from test_train_checkpoint import _state
        from w4s_jax.train.checkpointing import Checkpointer
        c = Checkpointer({str(tmp_path / 'ck')!r}, interval=1, keep=5, async_save=True)
        c.save(1, _state(1), {{"data_position": 1}})
        c.save(2, _state(2, n=400_000), {{"data_position": 2}})   # 160 MB, written in the background
        os.kill(os.getpid(), signal.SIGKILL)                      # dies mid-write
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=""))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not os.path.isdir(tmp_path / "ck" / "2")  # never finalised
    assert os.path.exists(tmp_path / "ck" / "1" / MANIFEST)
    state, meta, step = Checkpointer(str(tmp_path / "ck")).restore_latest(_abstract())
    assert step == 1 and meta["data_position"] == 1
    np.testing.assert_array_equal(np.asarray(state["params"]["w"]), 1.0)
    # and training on from there saves step 2 normally
    c = Checkpointer(str(tmp_path / "ck"), interval=1)
    c.save(2, _state(2), {"data_position": 2})
    c.close()
    assert Checkpointer(str(tmp_path / "ck")).restore_latest(_abstract())[2] == 2


def test_flipped_byte_is_detected_and_previous_step_used(tmp_path, caplog):
    c = Checkpointer(str(tmp_path / "ck"), interval=1, keep=5)
    for s in (1, 2, 3):
        c.save(s, _state(s), {"data_position": s})
    c.close()
    files = [f for f in glob.glob(str(tmp_path / "ck" / "3" / "state" / "**" / "*"), recursive=True)
             if os.path.isfile(f)]
    victim = max(files, key=os.path.getsize)  # the array data
    with open(victim, "r+b") as f:
        f.seek(os.path.getsize(victim) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    with caplog.at_level("ERROR"):
        state, meta, step = Checkpointer(str(tmp_path / "ck")).restore_latest(_abstract())
    assert step == 2 and meta["data_position"] == 2
    np.testing.assert_array_equal(np.asarray(state["params"]["w"]), 2.0)
    assert "step 3" in caplog.text and "checksum" in caplog.text
    assert os.listdir(tmp_path / "corrupt_checkpoints")  # moved aside, not deleted
    assert not os.path.exists(tmp_path / "ck" / "3")


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
    workdir = tmp_path / "run"
    cmd = [sys.executable, os.path.join(REPO, "launch", "train.py"), "--config=configs/train.py:tiny",
           f"--config.workdir={workdir}", "--config.total_steps=500", "--config.batch_size=4",
           "--config.log_every=1", "--config.progress=False", "--config.data.max_len=320",
           "--config.data.min_bucket=320", "--config.data.min_loss_cap=1024", "--config.checkpoint.interval=1000",
           "--config.mesh.devices=1", "--config.mesh.fsdp=1"]
    # the same programs as the in-process tiny runs: share their compilation cache
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert '"preempted": true' in out
    last = read_metrics(workdir)[-1]["step"]
    assert 2 <= last < 500
    state, meta = Checkpointer(str(workdir / "checkpoints")).read(last)
    assert int(state["step"]) == last and meta["data_position"] == last


def test_cli_config_errors_are_one_clear_line(tmp_path):
    def run(*args):
        p = subprocess.run([sys.executable, os.path.join(REPO, "launch", "train.py"),
                            "--config=configs/train.py:tiny", f"--config.workdir={tmp_path}", *args],
                           cwd=REPO, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, JAX_PLATFORMS="cpu"))
        return p.returncode, p.stderr.strip().splitlines()[-1]

    rc, line = run("--config.optim.lrr=1e-4")
    assert rc == 2 and line.startswith("error: bad --config override") and 'Did you mean "lr"' in line
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": 1}\n')
    rc, line = run(f"--config.data.path={bad}")
    assert rc == 2 and line == f"error: {bad}:1: required field 'run_id' is missing"

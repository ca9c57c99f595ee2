"""Multi-host training, simulated on one machine: 2 processes on localhost (jax.distributed, gloo collectives),
each with 2 fake CPU devices, train the tiny preset from a tiny transformers checkpoint and are compared with
one process on 4 devices (the reference, run in this test process):

  * per-step losses and the final parameters (policy export and Hugging Face export) agree to 1e-5;
  * each process builds only its own half of every global batch (recorded from inside the data path by
    tests/multihost_worker.py), and the halves are the reference's batch;
  * a checkpoint written by 2 processes resumes in 1 and one written by 1 resumes in 2;
  * a killed process ends the other within a bounded time, and the last complete checkpoint restores;
  * an error on one host ends the other with that host's message.

Three 2-process runs share the work (each start costs imports, a model load and a compile).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file

from hf_reference import make_hf_model
from multihost_worker import row_hashes
from train_fixtures import assert_trees_close, policy_params, read_metrics, tiny_config
from w4s_jax.train.batches import BatchPlan
from w4s_jax.train.synthetic import build_tiny_tokenizer
from w4s_jax.train.trainer import train

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, "tests", "multihost_worker.py")
STEPS, ROWS = 6, 8
HEARTBEAT_S = 6  # a killed process is noticed after this long
# the tiny preset made cheap (one length bucket and loss-buffer size), on 4 devices, 2 micro-batches per step
RUN = {"total_steps": STEPS, "batch_size": ROWS, "accum_steps": 2, "log_every": 1, "progress": False,
       "data.max_len": 320, "data.min_bucket": 320, "data.min_loss_cap": 1024, "checkpoint.interval": 3}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random transformers Qwen2 checkpoint with the synthetic trajectories' tokenizer beside it."""
    path = tmp_path_factory.mktemp("hf-model")
    make_hf_model("qwen2", vocab=512, hidden=64, inter=96, heads=4, kv_heads=2, seed=5).float().save_pretrained(path)
    build_tiny_tokenizer(str(path))
    return str(path)


def _config(workdir, model_dir, **overrides):
    return tiny_config(workdir, **{**RUN, "model.path": model_dir, "mesh.devices": 4, "mesh.fsdp": -1, **overrides})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model_dir):
    """One process on 4 devices, 6 uninterrupted steps; every global batch's row hashes by position."""
    workdir = tmp_path_factory.mktemp("one-process")
    batches, built = {}, BatchPlan.arrays

    def arrays(self, position, rows=None):
        out = built(self, position, rows)
        batches[position] = row_hashes(out["input_ids"])
        return out

    BatchPlan.arrays = arrays
    try:
        train(_config(workdir, model_dir, export_hf=True))
    finally:
        BatchPlan.arrays = built
    assert len(batches[0]) == ROWS
    return {"workdir": str(workdir), "batches": batches, "metrics": {m["step"]: m for m in read_metrics(workdir)}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(workdir, model_dir, *, per_process=((), ()), env=None, **overrides):
    """2 processes of one run (2 devices each), started like `launch/train.py` on two hosts; their output
    goes to <workdir>/process-<i>.{out,err}."""
    port = _free_port()
    settings = {**RUN, "model.path": model_dir, "workdir": str(workdir), "distributed": True,
                "dist.coordinator": f"localhost:{port}", "dist.num_processes": 2, **overrides}
    common = ["--config=configs/train.py:tiny"] + [f"--config.{k}={v}" for k, v in settings.items()]
    os.makedirs(os.path.join(workdir, "record"), exist_ok=True)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               W4S_TEST_RECORD=os.path.join(workdir, "record"),
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", **(env or {}))
    procs = []
    for i in range(2):
        with open(os.path.join(workdir, f"process-{i}.out"), "w") as out, \
                open(os.path.join(workdir, f"process-{i}.err"), "w") as err:
            procs.append(subprocess.Popen([sys.executable, WORKER, *common, f"--config.dist.process_id={i}",
                                           *per_process[i]], cwd=REPO, env=env, stdout=out, stderr=err))
        procs[-1].log = os.path.join(workdir, f"process-{i}")
    return procs


def _finish(procs, timeout=400):
    """(exit status, stdout, stderr) of each process, once all have ended."""
    out = []
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a process of the run hung")
        logs = [open(f"{p.log}.{k}").read() for k in ("out", "err")]
        out.append((p.returncode, *logs))
    return out


def _check_success(results):
    for i, (rc, _, err) in enumerate(results):
        assert rc == 0, f"process {i} exited with {rc}:\n{err[-4000:]}"


def _check_rows(workdir, reference, positions):
    """Each process built only its own half of every global batch; together: the reference's batch."""
    rec = [{}, {}]
    for i in range(2):
        with open(os.path.join(workdir, "record", f"batches-{i}.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                rec[i][r["position"]] = r
    for k in positions:
        half = ROWS // 2
        assert rec[0][k]["rows"] == [0, half] and rec[1][k]["rows"] == [half, ROWS]
        assert len(rec[0][k]["row_hashes"]) == len(rec[1][k]["row_hashes"]) == half
        assert rec[0][k]["row_hashes"] + rec[1][k]["row_hashes"] == reference["batches"][k]


def _check_losses(workdir, reference, steps):
    got = {m["step"]: m for m in read_metrics(workdir)}  # a resumed run appends: its lines are the last
    for s in steps:
        np.testing.assert_allclose(got[s]["loss"], reference["metrics"][s]["loss"], rtol=1e-5, err_msg=f"step {s}")
        np.testing.assert_allclose(got[s]["grad_norm"], reference["metrics"][s]["grad_norm"], rtol=1e-4)


def test_killed_process_ends_the_other_and_the_run_resumes_in_one(tmp_path, model_dir, reference):
    """2 processes train from scratch (a checkpoint every step) like the 1-process run, each building only
    its half of every batch, until process 1 is killed as it starts step 4: process 0 ends with an error
    within a bounded time instead of hanging. One process then resumes from the last complete checkpoint
    (written by the 2 processes) and ends where the uninterrupted run did."""
    procs = _launch(tmp_path, model_dir, env={"W4S_TEST_KILL": "1:3"},
                    **{"checkpoint.interval": 1, "dist.heartbeat_timeout_s": HEARTBEAT_S})
    procs[1].wait(timeout=400)
    killed_at = time.monotonic()
    assert procs[1].returncode == -signal.SIGKILL, _finish(procs[1:])[0][2][-3000:]
    try:
        procs[0].wait(timeout=HEARTBEAT_S + 60)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        raise AssertionError(f"process 0 still running {HEARTBEAT_S + 60} s after process 1 was killed")
    waited = time.monotonic() - killed_at
    (rc, _, err), = _finish(procs[:1])
    # JAX's coordination service names the lost process once its heartbeats stop; or a collective failed
    # first and process 0 says so
    assert rc != 0 and ("unhealthy" in err or "another process of the run may have stopped" in err), err[-3000:]
    print(f"process 0 ended {waited:.1f} s after process 1 was killed (heartbeat timeout {HEARTBEAT_S} s)")
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2, 3]  # written by process 0 alone
    _check_losses(tmp_path, reference, [1, 2, 3])
    _check_rows(tmp_path, reference, [0, 1, 2])

    summary = train(_config(tmp_path, model_dir))  # 1 process, 4 devices
    assert summary["step"] == STEPS
    _check_losses(tmp_path, reference, [4, 5, 6])
    _, want = policy_params(reference["workdir"], STEPS)
    _, got = policy_params(tmp_path, STEPS)
    assert_trees_close(got, want, atol=1e-5)


def test_one_process_checkpoint_resumes_in_two_and_exports(tmp_path, model_dir, reference):
    """Step 3 of the 1-process run, continued to the end by 2 processes: the remaining losses, the policy
    export and the Hugging Face export (gathered from parameters split over both processes) are the
    uninterrupted run's."""
    shutil.copytree(os.path.join(reference["workdir"], "checkpoints", "3"), tmp_path / "checkpoints" / "3")
    results = _finish(_launch(tmp_path, model_dir, export_hf=True))
    _check_success(results)
    assert all(json.loads(out.strip().splitlines()[-1])["step"] == STEPS for _, out, _ in results)
    assert [m["step"] for m in read_metrics(tmp_path)] == [4, 5, 6]
    assert len(os.listdir(tmp_path / "tensorboard")) == 1  # process 0's
    _check_losses(tmp_path, reference, [4, 5, 6])
    _check_rows(tmp_path, reference, [3, 4, 5])
    _, want = policy_params(reference["workdir"], STEPS)
    _, got = policy_params(tmp_path, STEPS)
    assert_trees_close(got, want, atol=1e-5)
    hf_want = load_file(os.path.join(reference["workdir"], "hf", "model.safetensors"))
    hf_got = load_file(tmp_path / "hf" / "model.safetensors")
    assert sorted(hf_got) == sorted(hf_want)
    for name in hf_want:
        np.testing.assert_allclose(hf_got[name], hf_want[name], atol=1e-5, err_msg=name)
    assert os.path.exists(tmp_path / "hf" / "tokenizer.json")


def test_an_error_on_one_host_ends_every_host_with_its_message(tmp_path, model_dir):
    """Process 1 cannot read its data (not mounted on that host): it fails with the reason; process 0, which
    got further, ends too, quoting process 1's error, instead of waiting forever for it."""
    missing = tmp_path / "not-mounted" / "trajectories.jsonl"
    t0 = time.monotonic()
    results = _finish(_launch(tmp_path, model_dir, per_process=((), (f"--config.data.path={missing}",))),
                      timeout=180)
    elapsed = time.monotonic() - t0
    (rc0, _, err0), (rc1, _, err1) = results
    line1 = err1.strip().splitlines()[-1]
    assert rc1 == 2 and line1.startswith("error: process 1 of 2: ") and str(missing) in line1, err1[-3000:]
    assert rc0 == 1, err0[-3000:]
    assert f"error: process 1 of 2 failed: TrajectoryError: " in err0 and str(missing) in err0, err0[-3000:]
    assert "ending this process because process 1 failed" in err0
    print(f"both processes ended {elapsed:.1f} s after start")

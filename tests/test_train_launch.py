"""Launch helpers: TPU slice commands (dry run). (The benchmarks' accelerator paths: tests/test_bench_gpu.py.)"""
import os
import shlex
import subprocess
import sys

from w4s_jax.train import tpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tpu_dry_run_prints_the_commands_and_runs_nothing(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no gcloud reachable: a real run would fail
    p = subprocess.run([sys.executable, os.path.join(REPO, "launch", "tpu", "tpu.py"), "run", "--dry_run",
                        "--name=w4s", "--zone=us-central2-b", "--project=proj", "--workdir=/mnt/b/runs/r1",
                        "--override=--config.data.path=/mnt/b/t/*.jsonl"],
                       cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    (line,) = p.stdout.strip().splitlines()
    argv = shlex.split(line)
    assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "w4s"]
    assert "--worker=all" in argv and "--zone=us-central2-b" in argv and "--project=proj" in argv
    remote = shlex.split(argv[-1].removeprefix("--command="))
    assert remote[:3] == ["cd", "~/w4s-jax", "&&"]
    assert remote[3:] == ["python3", "launch/train.py", "--config=configs/train.py:qwen2.5-coder-7b-tpu-v4-8",
                          "--config.workdir=/mnt/b/runs/r1", "--config.distributed=True",
                          "--config.data.path=/mnt/b/t/*.jsonl"]
    bad = subprocess.run([sys.executable, os.path.join(REPO, "launch", "tpu", "tpu.py"), "run", "--dry_run"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode != 0 and "needs --workdir" in bad.stderr


def test_tpu_command_builders():
    s = tpu.Slice("w", "z", accelerator="v4-16", spot=True)
    (create,) = tpu.create(s)
    assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "w"] and "--spot" in create
    assert "--accelerator-type=v4-16" in create
    steps = tpu.install(s, source="/src/repo", bucket="bk")
    assert steps[0][4:8] == ["scp", "--recurse", "/src/repo", "w:~/w4s-jax"]
    assert ".[tpu]" in steps[1][-1] and "gcsfuse --implicit-dirs bk /mnt/bk" in steps[2][-1]
    assert all("--worker=all" in c for c in steps)
    assert tpu.delete(s)[0][-1] == "--quiet"

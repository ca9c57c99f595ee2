"""launch/bench_gpu.py with its tiny preset on the CPU: every section runs in its own process and comes back
into one JSON. peak_tflops = 10 and hbm_gbps = 10000 are beyond any 2-core CPU, so MFU and the roofline
fraction must come out below 1: a FLOP or byte count that is too high fails here."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from bench_support import REPO, run_bench
from w4s_jax.bench import gpu
from w4s_jax.bench.isolated import run_isolated

pytestmark = pytest.mark.timeout(600)


@pytest.mark.slow
def test_tiny_run_has_every_figure(tmp_path):
    res = run_bench(gpu.main, "bench_gpu", "tiny", tmp_path)
    assert res["complete"], res["sections"]
    assert res["total_s"] < res["budget_s"] == 300
    s = res["summary"]
    assert 0 < s["decode_roofline_fraction"] < 1 and s["decode_tok_s"] > 0
    for name in ("model_fwd_bwd", "train_lora", "train_full"):
        assert 0 < s[name]["mfu"] < 1 and s[name]["tok_s"] > 0, name
    sec = res["sections"]
    assert sec["train_lora"]["lora"] and not sec["train_full"]["lora"]
    # LoRA does not compute the frozen weights' gradients: fewer FLOPs per step for the same tokens
    assert sec["train_lora"]["step_flops"] < sec["train_full"]["step_flops"]
    assert sec["model_fwd_bwd"]["seq"] == 64 and sec["decode"]["n"] == 5
    assert (tmp_path / "jax_cache").is_dir()


def test_isolated_run_reports_failures_and_time_limits():
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"))
    bad = run_isolated("bench_support:sleep_then_return", {"seconds": "x"}, timeout_s=60, env=env, log=lambda s: None)
    assert bad["error"].startswith("exit status 1") and "TypeError" in bad["error"]
    lines = []
    ok = run_isolated("bench_support:sleep_then_return", {"seconds": 0.1}, timeout_s=60, env=env, log=lines.append)
    assert ok == {"slept_s": 0.1} and "sleeping 0.1 s" in lines
    slow = run_isolated("bench_support:sleep_then_return", {"seconds": 60}, timeout_s=2, env=env, log=lambda s: None)
    assert slow.get("timed_out") and "time limit" in slow["error"]


def test_launch_script_bad_override_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, str(REPO / "launch" / "bench_gpu.py"), "--config.budget_ss=1"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error: bad --config override")


def test_launch_script_finds_its_config_with_the_package_installed_elsewhere(tmp_path):
    # A regular (non-editable) install puts the package away from the checkout: the script must still read
    # configs/bench_gpu.py beside its own launch/ folder, from any working directory.
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "w4s_jax", site / "w4s_jax", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(site))
    p = subprocess.run([sys.executable, str(REPO / "launch" / "bench_gpu.py"), "--config.budget_s=1",
                        f"--config.workdir={tmp_path / 'out'}"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "out" / "bench_gpu.json").read_text())
    assert res["config"]["preset"] == "gpu" and res["budget_s"] == 1 and not res["complete"]
    assert all(v["error"].startswith("not run") for v in res["sections"].values())

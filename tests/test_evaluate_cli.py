"""launch/evaluate.py on the code benchmarks: every seed workflow against the local OpenAI-compatible server
scores what its scripted answers imply; eval.json; bad input is one line and exit status 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_evaluate_support import config, expected_accuracy, oracle_server
from test_rollout_support import sandbox_or_skip
from w4s_jax import tasks
from w4s_jax.rollout.eval_run import EvaluateError, run_evaluation as evaluate, summary_line
from w4s_jax.rollout import WorkflowCodeError

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N = 6


def code_task(name: str):
    if not (DATA / f"{name}_test.jsonl").is_file():
        pytest.skip(f"benchmark files not found in {DATA}")
    return tasks.get(name, str(DATA))


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_every_seed_workflow_scores_what_the_scripted_answers_imply(name, tmp_path):
    sandbox_or_skip()
    task = code_task(name)
    items = task.items("valid")[:N]
    flows = task.seed_workflows()
    assert {"cot", "cot_sc", "self_refine", "debate", "dynamic_role", "self_test"} <= set(flows)
    srv = oracle_server(task, items)
    try:
        for wf in sorted(flows):
            out = evaluate(config(name, wf, srv.base_url, tmp_path / wf))
            assert out["infra_errors"] == 0 and out["workflow_errors"] == 0, (wf, out["records"][:2])
            assert out["accuracy"] == pytest.approx(expected_accuracy(task, wf, items)), wf
            saved = json.loads((tmp_path / wf / "eval.json").read_text())
            assert saved["accuracy"] == out["accuracy"] and saved["n"] == N and saved["workflow"] == wf
            assert [r["item_id"] for r in saved["records"]] == [it.id for it in items]
            lo, hi = saved["ci95"]
            assert lo <= saved["accuracy"] <= hi
    finally:
        srv.stop()
    assert srv.stats["bad_request"] == 0


def test_self_test_revises_a_wrong_answer_after_running_the_public_example(tmp_path):
    sandbox_or_skip()
    task = code_task("mbpp")
    items = task.items("valid")[:N]
    srv = oracle_server(task, items)
    srv.log_requests = True
    try:
        out = evaluate(config("mbpp", "self_test", srv.base_url, tmp_path))
    finally:
        srv.stop()
    assert out["accuracy"] == 1.0
    # item 0 is answered wrong first: its example fails, the revision request quotes the failure
    # (items are evaluated concurrently: the two revision requests may arrive in either order)
    revisions = [b["messages"][-1]["content"] for b in srv.requests_log
                 if "# Failed examples:" in b["messages"][-1]["content"]]
    first = [r for r in revisions if items[0].question in r]
    assert len(revisions) == 2 and len(first) == 1
    assert "NotImplementedError" in first[0]
    assert out["records"][0]["calls"] == 2 and out["records"][1]["calls"] == 1


def test_eval_json_holds_config_usage_cost_and_records(tmp_path):
    sandbox_or_skip()
    task = code_task("humaneval")
    items = task.items("test")[:N]
    srv = oracle_server(task, items)
    try:
        out = evaluate(config("humaneval", "cot", srv.base_url, tmp_path, split="test"))
    finally:
        srv.stop()
    saved = json.loads((tmp_path / "eval.json").read_text())
    for key in ("accuracy", "ci95", "n", "records", "usage", "cost", "config", "task", "split", "workflow"):
        assert key in saved, key
    assert saved["config"]["split"] == "test" and saved["config"]["executor"]["base_url"] == srv.base_url
    assert saved["usage"]["calls"] == N and saved["usage"]["prompt_tokens"] > 0 and saved["cost"] == 0.0
    rec = saved["records"][1]
    assert rec["correct"] is True and rec["answer"] == {"answer": items[1].answer} and rec["question"] == items[1].question
    assert "accuracy 0.6667 (95% CI" in summary_line(out)


def test_a_workflow_file_and_bad_input(tmp_path):
    sandbox_or_skip()
    task = code_task("mbpp")
    items = task.items("valid")[:N]
    path = tmp_path / "my_workflow.py"
    path.write_text(task.seed_workflows()["cot"])
    srv = oracle_server(task, items)
    try:
        out = evaluate(config("mbpp", str(path), srv.base_url, tmp_path / "file"))
        assert out["workflow"] == str(path) and out["accuracy"] == pytest.approx(4 / 6)
        with pytest.raises(EvaluateError, match="neither a seed workflow of task 'mbpp'.*self_test"):
            evaluate(config("mbpp", "no_such_flow", srv.base_url, tmp_path / "x"))
        with pytest.raises(EvaluateError, match="split 'dev' is not one of train, valid, test"):
            evaluate(config("mbpp", "cot", srv.base_url, tmp_path / "x", split="dev"))
        with pytest.raises(EvaluateError, match="no items in split 'train'"):
            evaluate(config("mbpp", "cot", srv.base_url, tmp_path / "x", split="train"))
        path.write_text("def solver(agent, task)\n    return 1\n")
        with pytest.raises(WorkflowCodeError, match="line 1: syntax error"):
            evaluate(config("mbpp", str(path), srv.base_url, tmp_path / "x"))
    finally:
        srv.stop()


def test_launch_script_prints_accuracy_and_interval_and_exits_2_on_bad_input(tmp_path):
    sandbox_or_skip()
    task = code_task("mbpp")
    items = task.items("valid")[:3]
    srv = oracle_server(task, items)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, str(REPO / "launch" / "evaluate.py"), "--config.task=mbpp", f"--config.data_dir={DATA}",
            "--config.limit=3", f"--config.executor.base_url={srv.base_url}", "--config.executor.model=sim",
            f"--config.workdir={tmp_path}"]
    try:  # both at once: most of their time is start-up (imports)
        procs = [subprocess.Popen(base + [f"--config.workflow={wf}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for wf in ("self_test", "nope")]
        outs = [p.communicate(timeout=120) for p in procs]
        ok, bad = [subprocess.CompletedProcess(p.args, p.returncode, *o) for p, o in zip(procs, outs)]
    finally:
        srv.stop()
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "mbpp/valid self_test: accuracy 1.0000 (95% CI 1.0000-1.0000), n=3" in ok.stdout
    assert "3/3" in ok.stderr   # the progress bar
    assert json.loads((tmp_path / "eval.json").read_text())["n"] == 3
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("error: workflow 'nope' is neither a seed workflow")

"""Every seed workflow of every benchmark through launch/evaluate.py's entry point, against the local
OpenAI-compatible server: the accuracy is what the server's scripted answers imply.

Benchmarks with files in ../shared/data read them; the others read small fixtures that `datasets` writes
in their hub layouts (the fixtures of test_tasks_sources.py). The code benchmarks are covered, with more
checks, in test_evaluate_cli.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest

from test_evaluate_support import config, expected_accuracy, oracle_server
from test_rollout_support import sandbox_or_skip
from test_tasks_sources import gpqa_rows, gsm8k_rows, mmlu_rows, parquet, svamp_rows, write_math_snapshot
from w4s_jax import tasks
from w4s_jax.rollout.eval_run import run_evaluation as evaluate

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = {"gsm_hard": ["gsmhardv2.jsonl"], "mgsm": ["mgsm"], "drop": ["drop_v0_dev.jsonl.gz"]}
BENCHMARKS = ["drop", "gpqa", "gsm8k", "gsm_hard", "gsm_plus", "math", "mgsm", "mmlu_pro", "svamp"]
N = 3   # items 0 (answered wrong first), 1 and 2 (answered right)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("benchmarks")
    for files in REAL.values():
        for f in files:
            if (DATA / f).exists():
                os.symlink(DATA / f, d / f)
    parquet(gsm8k_rows(), d / "gsm8k" / "main" / "test-00000-of-00001.parquet")
    (d / "SVAMP.json").write_text(json.dumps(svamp_rows()))
    plus = [{"question": f"Variant {i}: 3 boxes of {i} apples. How many apples?", "answer": str(3 * i),
             "solution": "", "perturbation_type": "numerical substitution", "seed_question": "", "seed_solution": "",
             "seed_answer": ""} for i in range(1000)]
    (d / "GSM-Plus" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(plus).to_json(str(d / "GSM-Plus" / "data" / "test-00000-of-00001.jsonl"))
    write_math_snapshot(d, test_per_subject=203)
    parquet(mmlu_rows(), d / "MMLU-Pro" / "data" / "test-00000-of-00001.parquet")
    datasets.Dataset.from_list(gpqa_rows()).to_csv(str(d / "gpqa_diamond.csv"), index=False)
    return d


def test_the_benchmarks_are_the_registered_ones():
    assert set(BENCHMARKS) | {"humaneval", "mbpp"} <= set(tasks.names())


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_seed_workflow_scores_what_the_scripted_answers_imply(name, data_dir, tmp_path):
    sandbox_or_skip()
    if any(not (data_dir / f).exists() for f in REAL.get(name, [])):
        pytest.skip(f"{name}: benchmark files not found in {DATA}")
    task = tasks.get(name, str(data_dir))
    items = task.items("valid")[:N]
    flows = task.seed_workflows()
    assert {"cot", "cot_sc", "self_refine", "debate", "dynamic_role"} <= set(flows)
    srv = oracle_server(task, items)
    try:
        for wf in sorted(flows):
            out = evaluate(config(name, wf, srv.base_url, tmp_path / wf, data_dir=data_dir, limit=N))
            assert out["infra_errors"] == 0 and out["workflow_errors"] == 0, (wf, out["records"][:2])
            assert out["accuracy"] == pytest.approx(expected_accuracy(task, wf, items)), (wf, out["records"])
            assert json.loads((tmp_path / wf / "eval.json").read_text())["n"] == N
    finally:
        srv.stop()
    assert srv.stats["bad_request"] == 0

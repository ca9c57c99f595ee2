"""The `datasets` path and the ADAS / AFlow local layouts, on small fixtures that `datasets` itself writes
(parquet, JSON lines, CSV in the hub repositories' layout, and `save_to_disk`): every source of a benchmark
gives the same items and the same documented split."""
from __future__ import annotations

import collections
import json
import random

import datasets
import pytest

from w4s_jax.tasks import competition_math, gsm, multiple_choice
from w4s_jax.tasks.answers import LETTERS
from w4s_jax.tasks.loading import DataError


def public_shuffle(rows: list) -> list:
    rows = list(rows)
    random.Random(0).shuffle(rows)   # == random.seed(0); random.shuffle(rows), as ADAS and W4S do
    return rows


def splits_of(task) -> dict:
    return {s: [(it.id, it.question, it.answer) for it in task.items(s)] for s in ("valid", "test", "train")}


def parquet(rows: list[dict], path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(path))


# ------------------------------------------------------------------------------------------ GSM8K

def gsm8k_rows(n: int = 1000) -> list[dict]:
    return [{"question": f"Problem {i}: a shop has {i} pens and buys 1000 more. How many?",
             "answer": f"{i} + 1000 = {i + 1000}\n#### {i + 1000:,}"} for i in range(n)]


def test_gsm8k_from_hub_snapshot_save_to_disk_adas_file_and_the_hub_agree(tmp_path, monkeypatch):
    rows = gsm8k_rows()
    snap, saved, adas = tmp_path / "snap", tmp_path / "saved", tmp_path / "adas"
    parquet(rows, snap / "gsm8k" / "main" / "test-00000-of-00001.parquet")
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:5]),
                          "test": datasets.Dataset.from_list(rows)}).save_to_disk(str(saved / "gsm8k"))
    adas.mkdir()
    (adas / "GSM8k_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    got = [splits_of(gsm.gsm8k(str(d))) for d in (snap, saved, adas)]
    assert got[0] == got[1] == got[2]
    task = gsm.gsm8k(str(snap))
    assert task.source["origin"].endswith("main/test-*.parquet")
    expected = public_shuffle(list(enumerate(rows)))
    assert [it.id for it in task.items("valid")] == [f"gsm8k/test/{i}" for i, _ in expected[:128]]
    assert [len(task.items(s)) for s in ("valid", "test", "train")] == [128, 800, 72]
    first = task.items("test")[0]
    assert first.answer == expected[128][0] + 1000 and task.score({"answer": f"{first.answer:,}"}, first) == 1.0

    calls = []

    def fake_load_dataset(repo, config=None, split=None, **kw):
        calls.append((repo, config, split))
        return datasets.Dataset.from_list(rows)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert splits_of(gsm.gsm8k(str(tmp_path / "empty"))) == got[0]
    assert splits_of(gsm.gsm8k(None)) == got[0]
    assert calls == [("openai/gsm8k", "main", "test")] * 2


def test_gsm8k_solution_without_final_number_is_an_unparsable_target(tmp_path):
    rows = gsm8k_rows()
    rows[3]["answer"] = "no final line"
    parquet(rows, tmp_path / "gsm8k" / "main" / "test-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"test-00000-of-00001\.parquet row 3 \(id gsm8k/test/3\): unparsable target"):
        gsm.gsm8k(str(tmp_path))


# ------------------------------------------------------------------------------------------ SVAMP

def svamp_rows() -> list[dict]:
    return [{"ID": f"chal-{i}", "Body": f"Tom has {i} marbles.", "Question": "How many after getting 2 more?",
             "Equation": f"( {i}.0 + 2.0 )", "Answer": float(i + 2), "Type": "Addition"} for i in range(1, 1001)]


def test_svamp_hub_splits_and_adas_json_give_one_order_sorted_by_id(tmp_path):
    rows = svamp_rows()
    mixed = public_shuffle(rows)   # the hub's train/test split is in another order than SVAMP.json
    parquet(mixed[:700], tmp_path / "hub" / "SVAMP" / "data" / "train-00000-of-00001.parquet")
    parquet(mixed[700:], tmp_path / "hub" / "SVAMP" / "data" / "test-00000-of-00001.parquet")
    (tmp_path / "adas").mkdir()
    (tmp_path / "adas" / "SVAMP.json").write_text(json.dumps(rows))
    hub, adas = gsm.svamp(str(tmp_path / "hub")), gsm.svamp(str(tmp_path / "adas"))
    assert splits_of(hub) == splits_of(adas)
    assert [it.id for it in adas.items("valid")] == [r["ID"] for r in public_shuffle(rows)[:128]]
    it = adas.items("test")[0]
    n = int(it.id.split("-")[1])
    assert it.question == f"Tom has {n} marbles. How many after getting 2 more?" and it.answer == n + 2


# ------------------------------------------------------------------------------------------ GSM-Plus

def test_gsm_plus_json_lines_snapshot_and_none_answers(tmp_path):
    rows = [{"question": f"Variant {i}: 3 boxes of {i} apples. How many apples?",
             "answer": "None" if i % 10 == 0 else str(3 * i), "solution": "...",
             "perturbation_type": "critical thinking" if i % 10 == 0 else "numerical substitution",
             "seed_question": f"seed {i // 8}", "seed_solution": "", "seed_answer": ""} for i in range(1000)]
    path = tmp_path / "GSM-Plus" / "data" / "test-00000-of-00001.jsonl"
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_json(str(path))
    task = gsm.gsm_plus(str(tmp_path))
    items = {it.id: it for s in ("valid", "test", "train") for it in task.items(s)}
    assert len(items) == 1000 and [len(task.items(s)) for s in ("valid", "test", "train")] == [128, 800, 72]
    assert items["gsm_plus/test/10"].answer == "None" and items["gsm_plus/test/11"].answer == 33
    assert task.score({"answer": "None"}, items["gsm_plus/test/10"]) == 1.0
    assert task.score({"answer": "0"}, items["gsm_plus/test/10"]) == 0.0
    assert "None" in task.seed_workflows()["cot"]   # the answer format tells the executor about None


# ------------------------------------------------------------------------------------------ MATH

def math_rows(split: str, per_subject: int, offset: int = 0) -> dict[str, list[dict]]:
    out = {}
    for k, (config, subject) in enumerate(competition_math.SUBJECTS.items()):
        out[config] = [{"problem": f"{split} {subject} problem {offset + i}: compute {i} + {k}.",
                        "level": "Level 5" if i % 4 else "Level 3", "type": subject,
                        "solution": f"It is $\\boxed{{{i + k}}}$."} for i in range(per_subject)]
    return out


def write_math_snapshot(root, test_per_subject=202, train_per_subject=20):
    for split, per in (("test", test_per_subject), ("train", train_per_subject)):
        for config, rows in math_rows(split, per).items():
            parquet(rows, root / "hendrycks_math" / config / f"{split}-00000-of-00001.parquet")


def test_math_from_the_mirror_level5_four_subjects_119_486(tmp_path):
    write_math_snapshot(tmp_path)   # 4 x 151 = 604 level-5 test problems: one short
    with pytest.raises(DataError, match=r"expected at least 605 items \(119 valid \+ 486 test\), found 604"):
        competition_math.competition_math(str(tmp_path))
    write_math_snapshot(tmp_path, test_per_subject=203)   # now 4 x 152 = 608
    task = competition_math.competition_math(str(tmp_path))
    sizes = [len(task.items(s)) for s in ("valid", "test", "train")]
    assert sizes == [119, 486, 3 + 4 * 15]   # 3 spare level-5 test problems, then the train split's level 5
    assert all(it.meta["level"] == "Level 5" for s in ("valid", "test", "train") for it in task.items(s))
    test_pool = sorted((it for s in ("valid", "test", "train") for it in task.items(s)
                        if it.question.startswith("test")), key=lambda it: it.id)
    assert len(test_pool) == 608
    assert task.items("valid") == public_shuffle(test_pool)[:119]
    assert task.items("test") == public_shuffle(test_pool)[119:605]
    it = task.items("valid")[0]
    assert task.score({"answer": it.answer}, it) == 1.0 and task.score("\\frac{-1}{1}", it) == 0.0
    assert "code" in task.seed_workflows()


def test_math_aflow_files_are_used_verbatim_and_train_comes_from_a_local_mirror(tmp_path):
    rows = [r for rs in math_rows("test", 160).values() for r in rs if r["level"] == "Level 5"]
    (tmp_path / "math_validate.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:119]))
    (tmp_path / "math_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[119:605]))
    task = competition_math.competition_math(str(tmp_path))
    assert [it.question for it in task.items("valid")] == [r["problem"] for r in rows[:119]]
    assert [it.question for it in task.items("test")] == [r["problem"] for r in rows[119:605]]
    assert task.items("train") == [] and "empty" in task.source["train"]
    # with a local copy of the mirror, train is its level-5 train problems, minus any text in valid or test
    write_math_snapshot(tmp_path, test_per_subject=1, train_per_subject=20)
    dup = dict(rows[0])
    parquet(math_rows("train", 20)["prealgebra"] + [dup],
            tmp_path / "hendrycks_math" / "prealgebra" / "train-00000-of-00001.parquet")
    task = competition_math.competition_math(str(tmp_path))
    train = task.items("train")
    assert len(train) == 4 * 15 and {it.id for it in train}.isdisjoint(it.id for it in task.items("valid"))


def test_math_solution_without_boxed_answer_is_reported(tmp_path):
    rows = [{"problem": "p", "solution": "no box", "level": "Level 5", "type": "Prealgebra"}]
    (tmp_path / "math_validate.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (tmp_path / "math_test.jsonl").write_text("")
    with pytest.raises(DataError, match=r"math_validate\.jsonl:1 \(id math/[0-9a-f]{16}\): unparsable target"):
        competition_math.competition_math(str(tmp_path))


# ------------------------------------------------------------------------------------------ MMLU-Pro

def mmlu_rows(n: int = 1000) -> list[dict]:
    rows = []
    for i in range(n):
        k = 3 + i % 8     # 3 to 10 options
        rows.append({"question_id": 5000 - i, "question": f"Question {i}?", "options": [f"opt {j}" for j in range(k)],
                     "answer": LETTERS[i % k], "answer_index": i % k, "cot_content": "", "category": "law",
                     "src": "x"})
    return rows


def test_mmlu_pro_sorted_by_question_id_up_to_ten_options(tmp_path):
    rows = mmlu_rows()
    parquet(rows, tmp_path / "MMLU-Pro" / "data" / "test-00000-of-00001.parquet")
    task = multiple_choice.mmlu_pro(str(tmp_path))
    by_id = sorted(rows, key=lambda r: r["question_id"])
    assert [it.id for it in task.items("valid")] == [f"mmlu_pro/{r['question_id']}" for r in public_shuffle(by_id)[:128]]
    items = [it for s in ("valid", "test", "train") for it in task.items(s)]
    ten = next(it for it in items if len(it.meta["options"]) == 10)
    assert "(J) opt 9" in ten.question and ten.question.startswith("Question")
    assert all(task.score(f"The answer is ({it.answer}).", it) == 1.0 for it in items)
    rows[5]["answer"] = "Z"
    parquet(rows, tmp_path / "MMLU-Pro" / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"row 5 \(id mmlu_pro/4995\): unparsable target: answer 'Z'"):
        multiple_choice.mmlu_pro(str(tmp_path))


# ------------------------------------------------------------------------------------------ GPQA

def gpqa_rows(n: int = 198) -> list[dict]:
    return [{"Record ID": f"rec{i:04d}", "Question": f"  Which is right, {i}?\n", "Correct Answer": f"right {i}",
             "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
             "Incorrect Answer 3": f"wrong c{i}", "High-level domain": "Physics"} for i in range(n)]


def test_gpqa_csv_and_hub_snapshot_correct_letters_spread_evenly(tmp_path):
    rows = gpqa_rows()
    (tmp_path / "adas").mkdir()
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "adas" / "gpqa_diamond.csv"), index=False)
    (tmp_path / "hub" / "gpqa").mkdir(parents=True)
    datasets.Dataset.from_list(rows[::-1]).to_csv(str(tmp_path / "hub" / "gpqa" / "gpqa_diamond.csv"), index=False)
    task = multiple_choice.gpqa(str(tmp_path / "adas"))
    assert splits_of(task) == splits_of(multiple_choice.gpqa(str(tmp_path / "hub")))
    assert [len(task.items(s)) for s in ("valid", "test", "train")] == [32, 166, 0]
    assert collections.Counter(it.answer for it in task.items("valid")) == {"A": 8, "B": 8, "C": 8, "D": 8}
    assert sorted(collections.Counter(it.answer for it in task.items("test")).values()) == [41, 41, 42, 42]
    for it in task.items("valid") + task.items("test"):
        n = int(it.id.removeprefix("gpqa/rec"))
        assert it.meta["options"][LETTERS.index(it.answer)] == f"right {n}"
        assert it.question.startswith(f"Which is right, {n}?\n\nOptions:\n(A) ")
        assert task.score({"answer": it.answer}, it) == 1.0 and task.score({"answer": f"right {n}"}, it) == 1.0
    assert [it.id for it in task.items("valid")] == [f"gpqa/{r['Record ID']}" for r in public_shuffle(rows)[:32]]


def test_gpqa_wrong_count_and_missing_correct_answer(tmp_path):
    rows = gpqa_rows(197)
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "gpqa_diamond.csv"), index=False)
    with pytest.raises(DataError, match=r"expected exactly 198 items"):
        multiple_choice.gpqa(str(tmp_path))
    rows = gpqa_rows()
    rows[7]["Correct Answer"] = ""   # record 7 starts on line 16: header, then two lines per record
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "gpqa_diamond.csv"), index=False)
    with pytest.raises(DataError, match=r"gpqa_diamond\.csv:16 \(id gpqa/rec0007\): missing 'Correct Answer'"):
        multiple_choice.gpqa(str(tmp_path))

"""Loaders on the real benchmark files in ../shared/data (skipped when absent): counts, the published splits
(W4S for GSM-Hard, ADAS for MGSM and DROP) rebuilt independently, determinism across processes and hash
seeds, disjoint splits; bad rows and missing data reported with file, line and id."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from w4s_jax import tasks
from w4s_jax.tasks import drop, gsm
from w4s_jax.tasks.loading import DataError, DataNotFound

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = {"gsm_hard": ("gsmhardv2.jsonl",), "mgsm": ("mgsm/mgsm_en.tsv",), "drop": ("drop_v0_dev.jsonl.gz",)}


def need(*files: str) -> None:
    missing = [f for f in files if not (DATA / f).is_file()]
    if missing:
        pytest.skip(f"benchmark data not present: {', '.join(missing)}")


def public_shuffle(rows: list) -> list:
    """What the public W4S / ADAS code does: random.seed(0); random.shuffle(rows) (global state restored)."""
    state = random.getstate()
    try:
        random.seed(0)
        rows = list(rows)
        random.shuffle(rows)
        return rows
    finally:
        random.setstate(state)


def fingerprint(task) -> dict:
    return {s: hashlib.sha256(json.dumps([[it.id, it.question, it.answer] for it in task.items(s)],
                                         ensure_ascii=False).encode()).hexdigest() for s in tasks.SPLITS}


def test_gsm_hard_is_the_public_w4s_split():
    need(*REAL["gsm_hard"])
    task = gsm.gsm_hard(str(DATA))
    rows = public_shuffle([json.loads(line) for line in open(DATA / "gsmhardv2.jsonl", encoding="utf-8")])
    assert [len(task.items(s)) for s in ("valid", "test", "train")] == [128, 500, 691]
    for split, part in (("valid", rows[:128]), ("test", rows[128:628]), ("train", rows[628:])):
        items = task.items(split)
        assert [it.question for it in items] == [r["input"].strip() for r in part]
        assert all(task.score({"answer": str(r["target"])}, it) == 1.0 for it, r in zip(items, part))
    assert task.items("valid")[0].id.startswith("gsm_hard/")


def test_mgsm_is_the_adas_split_over_all_eleven_languages():
    need(*REAL["mgsm"])
    task = gsm.mgsm(str(DATA))
    rows = []
    for lang in ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"):
        with open(DATA / "mgsm" / f"mgsm_{lang}.tsv", encoding="utf-8") as f:
            rows += [line.rstrip("\n").split("\t") for line in f if line.strip()]
    assert len(rows) == 2750
    rows = public_shuffle(rows)
    assert [len(task.items(s)) for s in ("valid", "test", "train")] == [128, 800, 1822]
    got = [(it.question, it.answer) for s in ("valid", "test", "train") for it in task.items(s)]
    assert got == [(q.strip(), int(a.replace(",", ""))) for q, a in rows]
    assert {it.meta["lang"] for it in task.items("test")} == set(gsm.MGSM_LANGUAGES)


def test_drop_is_the_adas_split_without_the_few_shot_rows():
    need(*REAL["drop"])
    task = drop.drop(str(DATA))
    with gzip.open(DATA / "drop_v0_dev.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = public_shuffle(rows[1:-1])
    assert [len(task.items(s)) for s in ("valid", "test", "train")] == [128, 800, 8606]
    valid = task.items("valid")
    assert [it.answer for it in valid] == [r["ref_text"].split("|") for r in rows[:128]]
    assert all(r["context"].startswith(it.question) and not it.question.endswith("Answer:")
               for it, r in zip(valid, rows))
    assert "Passage:" in valid[0].question and "\nQuestion:" in valid[0].question


def test_registry_loads_by_name_and_splits_are_disjoint():
    need(*(f for files in REAL.values() for f in files))
    for name in REAL:
        task = tasks.get(name, str(DATA))
        ids = [it.id for s in tasks.SPLITS for it in task.items(s)]
        assert len(ids) == len(set(ids)), name
        assert task.description.strip() and task.seed_workflows()
        assert set(task.seed_workflows()) >= {"cot", "cot_sc", "self_refine", "debate", "dynamic_role"}


def test_splits_are_identical_across_loads_processes_and_hash_seeds():
    need(*(f for files in REAL.values() for f in files))
    here = {name: fingerprint(f(str(DATA))) for name, f in (("gsm_hard", gsm.gsm_hard), ("mgsm", gsm.mgsm),
                                                           ("drop", drop.drop))}
    again = {name: fingerprint(f(str(DATA))) for name, f in (("gsm_hard", gsm.gsm_hard), ("mgsm", gsm.mgsm),
                                                            ("drop", drop.drop))}
    assert here == again
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_tasks_loaders import fingerprint\n"
        "from w4s_jax.tasks import gsm, drop\n"
        "print(json.dumps({n: fingerprint(f(sys.argv[1])) for n, f in "
        "(('gsm_hard', gsm.gsm_hard), ('mgsm', gsm.mgsm), ('drop', drop.drop))}))\n")
    for hash_seed in ("1", "987"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", script, str(DATA), str(Path(__file__).parent)], env=env,
                             capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here


# ------------------------------------------------------------------------------------------ bad data

def test_malformed_json_line_names_file_and_line(tmp_path):
    (tmp_path / "gsmhardv2.jsonl").write_text('{"input": "q", "target": 1}\n{"input": "q2", "tar\n')
    with pytest.raises(DataError, match=r"gsmhardv2\.jsonl:2: malformed JSON line"):
        gsm.gsm_hard(str(tmp_path))


def test_missing_answer_names_file_line_and_id(tmp_path):
    lines = [json.dumps({"input": f"q{i}", "target": i}) for i in range(700)]
    lines[41] = json.dumps({"input": "q41"})
    (tmp_path / "gsmhardv2.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"gsmhardv2\.jsonl:42 \(id gsm_hard/41\): missing 'target'"):
        gsm.gsm_hard(str(tmp_path))


def test_unparsable_target_names_file_line_and_id(tmp_path):
    (tmp_path / "mgsm").mkdir()
    for lang in gsm.MGSM_LANGUAGES:
        rows = [f"question {i}\t{i}" for i in range(250)]
        if lang == "fr":
            rows[6] = "question 6\tsix"
        (tmp_path / "mgsm" / f"mgsm_{lang}.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"mgsm_fr\.tsv:7 \(id mgsm/fr/6\): unparsable target 'six'"):
        gsm.mgsm(str(tmp_path))


def test_wrong_field_count_and_short_files_are_reported(tmp_path):
    (tmp_path / "mgsm").mkdir()
    for lang in gsm.MGSM_LANGUAGES:
        (tmp_path / "mgsm" / f"mgsm_{lang}.tsv").write_text("a question without an answer\n")
    with pytest.raises(DataError, match=r"mgsm_bn\.tsv:1: expected 2 tab-separated fields"):
        gsm.mgsm(str(tmp_path))
    (tmp_path / "gsmhardv2.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "target": i}) + "\n"
                                                     for i in range(100)))
    with pytest.raises(DataError, match=r"expected at least 628 items \(128 valid \+ 500 test\), found 100"):
        gsm.gsm_hard(str(tmp_path))


def test_drop_row_without_references(tmp_path):
    path = tmp_path / "drop_v0_dev.jsonl.gz"
    rows = [{"context": f"Passage: p{i}\nQuestion: q{i}\nAnswer:", "ref_text": str(i), "completion": ""}
            for i in range(1000)]
    rows[10]["ref_text"] = " | "
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    with pytest.raises(DataError, match=r"drop_v0_dev\.jsonl\.gz:11 \(id drop/11\): unparsable target"):
        drop.drop(str(tmp_path))


def test_a_partial_mgsm_copy_names_the_missing_files(tmp_path):
    (tmp_path / "mgsm").mkdir()
    (tmp_path / "mgsm" / "mgsm_en.tsv").write_text("q\t1\n")
    with pytest.raises(DataNotFound, match=r"mgsm/mgsm_bn\.tsv") as e:
        gsm.mgsm(str(tmp_path))
    assert "mgsm_en.tsv" not in str(e.value)


def test_no_local_copy_offline_says_what_to_download_and_where(tmp_path):
    with pytest.raises(DataNotFound, match=r"drop_v0_dev\.jsonl\.gz at .*drop_v0_dev\.jsonl\.gz"):
        drop.drop(str(tmp_path))
    script = (
        "import sys\n"
        "from w4s_jax.tasks import gsm, multiple_choice\n"
        "for f in (gsm.gsm8k, multiple_choice.gpqa):\n"
        "    try:\n"
        "        f(sys.argv[1])\n"
        "    except FileNotFoundError as e:\n"
        "        print(str(e)); print('=====')\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    gsm8k_msg, gpqa_msg = out.split("=====")[:2]
    assert f"GSM8k_test.jsonl at {tmp_path}/GSM8k_test.jsonl" in gsm8k_msg
    assert f"huggingface-cli download openai/gsm8k --repo-type dataset --local-dir {tmp_path}/gsm8k" in gsm8k_msg
    assert "W4S_DATA_DIR" in gsm8k_msg and gsm8k_msg.count("\n") < 10
    assert f"gpqa_diamond.csv at {tmp_path}/gpqa_diamond.csv" in gpqa_msg and "gated" in gpqa_msg

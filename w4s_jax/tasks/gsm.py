"""Grade-school maths word problems: GSM8K, GSM-Hard, SVAMP, GSM-Plus and MGSM (numeric answers).

Splits (README "Benchmark splits"): GSM-Hard as the public W4S code (seed-0 shuffle of the 1319 rows, valid
[:128], test [128:628], train the rest); the others as ADAS (seed-0 shuffle, valid [:128], test the next
800, train the rest) over a fixed canonical order: file order, SVAMP sorted by its ids, MGSM's languages
in alphabetical order.
"""
from __future__ import annotations

import re

from .answers import NO_ANSWER, parse_target_number, score_number
from .base import Item, SplitTask
from .loading import (DataError, HubSplit, Row, bad_row, build_items, local_file, not_found, read_json_list,
                      read_jsonl, read_tsv, require, rows_from_hub, seeded_split)
from .workflows import seed_workflows

SEED = 0
ROLE = "math expert"
NUMBER_FORMAT = ("Put only the final numerical answer in `answer`: digits with an optional minus sign and "
                 "decimal point, no units, currency symbols or thousands separators (e.g. 1250 or -3.75).")

_EXAMPLE = """Example question: A baker makes 3 trays of 24 rolls and sells all but 10 of them for $0.50 each.
How much money does she take in?
Example solution: 3 x 24 = 72 rolls; 72 - 10 = 62 sold; 62 x 0.50 = 31. Answer: 31"""


def _description(title: str, what: str, answer_rule: str, example: str = _EXAMPLE) -> str:
    return (f"{title}\n**Type**: maths word problems solved by multi-step arithmetic reasoning.\n"
            f"**What it tests**: {what}\n**Answer format**: {answer_rule}\n{example}\n")


def score_numeric_item(prediction, item: Item) -> float:
    return score_number(prediction, item.answer)


def _task(name: str, description: str, splits: dict, source: dict, answer_format: str = NUMBER_FORMAT) -> SplitTask:
    return SplitTask(name=name, description=description, splits=splits, scorer=score_numeric_item,
                     workflows=seed_workflows(answer_format, role=ROLE, code=True), source=source)


def _target(row: Row, item_id: str, raw) -> int | float:
    try:
        return parse_target_number(raw)
    except ValueError as e:
        raise bad_row(row, item_id, str(e)) from None


# ------------------------------------------------------------------------------------------ GSM-Hard

GSM_HARD_FILE = "gsmhardv2.jsonl"
GSM_HARD_FORMAT = NUMBER_FORMAT + " Keep at least two decimals when the result is not a whole number."
GSM_HARD_HUB = HubSplit("reasoning-machines/gsm-hard", None, "train", "gsm-hard", "gsmhardv2.jsonl")


def gsm_hard(data_dir: str | None) -> SplitTask:
    path = local_file(data_dir, GSM_HARD_FILE)
    if path:
        rows, origin = read_jsonl(path), str(path)
    else:
        rows, origin = rows_from_hub("gsm_hard", data_dir, [GSM_HARD_HUB], [GSM_HARD_FILE])

    def make(i: int, row: Row) -> Item:
        item_id = f"gsm_hard/{i}"
        question, raw = require(row, item_id, "input", "target")
        return Item(item_id, question.strip(), _target(row, item_id, raw))

    items = build_items(rows, make)
    splits = seeded_split(items, seed=SEED, valid=128, test=500, origin=origin)
    desc = _description("GSM-Hard", "GSM8K problems whose numbers were replaced by large, awkward ones, so "
                        "careful computation matters; answers may be negative or non-integer.", GSM_HARD_FORMAT)
    return _task("gsm_hard", desc, splits, {"origin": origin, "seed": SEED, "valid": 128, "test": 500},
                 GSM_HARD_FORMAT)


# ------------------------------------------------------------------------------------------ GSM8K

GSM8K_FILE = "GSM8k_test.jsonl"
GSM8K_HUB = HubSplit("openai/gsm8k", "main", "test", "gsm8k", "main/test-*.parquet")
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def gsm8k_final_answer(solution: str) -> str | None:
    """The number after '####' in a GSM8K reference solution."""
    m = _GSM8K_FINAL.search(solution)
    return m.group(1) if m else None


def gsm8k(data_dir: str | None) -> SplitTask:
    path = local_file(data_dir, GSM8K_FILE)
    if path:
        rows, origin = read_jsonl(path), str(path)
    else:
        rows, origin = rows_from_hub("gsm8k", data_dir, [GSM8K_HUB], [GSM8K_FILE])

    def make(i: int, row: Row) -> Item:
        item_id = f"gsm8k/test/{i}"
        question, solution = require(row, item_id, "question", "answer")
        final = gsm8k_final_answer(str(solution))
        if final is None:
            raise bad_row(row, item_id, f"unparsable target: no '#### <number>' in {str(solution)[-60:]!r}")
        return Item(item_id, question.strip(), _target(row, item_id, final), {"solution": solution})

    splits = seeded_split(build_items(rows, make), seed=SEED, valid=128, test=800, origin=origin)
    desc = _description("GSM8K", "everyday multi-step problems (2 to 8 steps) with whole-number answers.",
                        NUMBER_FORMAT)
    return _task("gsm8k", desc, splits, {"origin": origin, "seed": SEED, "valid": 128, "test": 800})


# ------------------------------------------------------------------------------------------ SVAMP

SVAMP_FILE = "SVAMP.json"
SVAMP_HUB = [HubSplit("ChilleD/SVAMP", None, s, "SVAMP", f"data/{s}-*.parquet") for s in ("train", "test")]


def _svamp_number(row: Row) -> int:
    m = re.fullmatch(r"chal-(\d+)", str(row.data.get("ID", "")).strip())
    if not m:
        raise bad_row(row, None, f"missing or malformed 'ID' {row.data.get('ID')!r} (expected chal-<n>)")
    return int(m.group(1))


def svamp(data_dir: str | None) -> SplitTask:
    path = local_file(data_dir, SVAMP_FILE)
    if path:
        rows, origin = read_json_list(path), str(path)
    else:
        rows, origin = rows_from_hub("svamp", data_dir, SVAMP_HUB, [SVAMP_FILE])
    rows = sorted(rows, key=_svamp_number)   # one canonical order whatever the source's order

    def make(i: int, row: Row) -> Item:
        item_id = str(row.data["ID"]).strip()
        body, question, answer = require(row, item_id, "Body", "Question", "Answer")
        text = f"{body.strip()} {question.strip()}"
        return Item(item_id, text, _target(row, item_id, answer), {"equation": row.data.get("Equation")})

    splits = seeded_split(build_items(rows, make), seed=SEED, valid=128, test=800, origin=origin)
    desc = _description("SVAMP", "one-step and two-step problems with small variations (reordered facts, "
                        "irrelevant numbers, changed questions) that trip up shallow pattern matching.",
                        NUMBER_FORMAT)
    return _task("svamp", desc, splits, {"origin": origin, "seed": SEED, "valid": 128, "test": 800})


# ------------------------------------------------------------------------------------------ GSM-Plus

GSM_PLUS_HUB = HubSplit("qintongli/GSM-Plus", None, "test", "GSM-Plus", "data/test-*.jsonl")
GSM_PLUS_FORMAT = NUMBER_FORMAT + (" If the problem does not give enough information to determine the answer, "
                                   "put None in `answer`.")


def gsm_plus(data_dir: str | None) -> SplitTask:
    rows, origin = rows_from_hub("gsm_plus", data_dir, [GSM_PLUS_HUB])

    def make(i: int, row: Row) -> Item:
        item_id = f"gsm_plus/test/{i}"
        question, answer = require(row, item_id, "question", "answer")
        target = NO_ANSWER if str(answer).strip() == NO_ANSWER else _target(row, item_id, answer)
        meta = {"perturbation": row.data.get("perturbation_type"), "seed_question": row.data.get("seed_question")}
        return Item(item_id, question.strip(), target, meta)

    splits = seeded_split(build_items(rows, make), seed=SEED, valid=128, test=800, origin=origin)
    desc = _description("GSM-Plus", "GSM8K problems perturbed eight ways (changed numbers, added distractors, "
                        "reversed questions, missing information, ...) to test robustness. Some problems "
                        "deliberately lack a needed fact; their answer is None.", GSM_PLUS_FORMAT)
    return _task("gsm_plus", desc, splits, {"origin": origin, "seed": SEED, "valid": 128, "test": 800},
                 GSM_PLUS_FORMAT)


# ------------------------------------------------------------------------------------------ MGSM

MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")   # ADAS's order
MGSM_FORMAT = NUMBER_FORMAT + " Write the number with Western digits (0-9) whatever the problem's language."


def _mgsm_rows(data_dir: str | None) -> tuple[list[tuple[str, Row]], str]:
    files = [f"mgsm/mgsm_{lang}.tsv" for lang in MGSM_LANGUAGES]
    paths = [local_file(data_dir, f) for f in files]
    if all(paths):
        out = [(lang, r) for lang, p in zip(MGSM_LANGUAGES, paths) for r in read_tsv(p, ("question", "answer"))]
        return out, str(paths[0].parent)
    hub = [HubSplit("juletxara/mgsm", lang, "test", "mgsm", f"mgsm_{lang}.tsv") for lang in MGSM_LANGUAGES]
    missing = [f for f, p in zip(files, paths) if not p]
    if any(paths):   # a partial copy is a mistake worth naming, not a reason to download
        raise not_found("mgsm", data_dir, missing)
    out = []
    origin = ""
    for lang, spec in zip(MGSM_LANGUAGES, hub):
        rows, origin = rows_from_hub("mgsm", data_dir, [spec], files)
        out += [(lang, Row(r.where, {"question": r.data.get("question"), "answer": r.data.get("answer_number")}))
                for r in rows]
    return out, origin


def mgsm(data_dir: str | None) -> SplitTask:
    rows, origin = _mgsm_rows(data_dir)
    counters: dict[str, int] = {}
    items = []
    for lang, row in rows:
        k = counters[lang] = counters.get(lang, -1) + 1
        item_id = f"mgsm/{lang}/{k}"
        question, answer = require(row, item_id, "question", "answer")
        items.append(Item(item_id, str(question).strip(), _target(row, item_id, answer), {"lang": lang}))
    if not items:
        raise DataError(f"{origin}: no MGSM items")
    splits = seeded_split(items, seed=SEED, valid=128, test=800, origin=origin)
    desc = _description("MGSM", "250 GSM8K problems translated into 11 languages (Bengali, German, English, "
                        "Spanish, French, Japanese, Russian, Swahili, Telugu, Thai, Chinese); the problem is "
                        "posed in its language.", MGSM_FORMAT)
    return _task("mgsm", desc, splits, {"origin": origin, "seed": SEED, "valid": 128, "test": 800}, MGSM_FORMAT)

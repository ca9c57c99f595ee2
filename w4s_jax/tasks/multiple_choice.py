"""Multiple-choice benchmarks scored by the option letter: MMLU-Pro (up to 10 options) and GPQA diamond (4).

MMLU-Pro: TIGER-Lab/MMLU-Pro, test split (12032 questions) sorted by question_id, shuffled with seed 0 as
ADAS does; valid [:128], test the next 800, train the rest.
GPQA: the diamond set (198 questions; hub Idavidrein/gpqa, gated, or the CSV `gpqa_diamond.csv` that ADAS
and the GPQA release ship), sorted by Record ID, shuffled with seed 0; valid [:32], test [32:198], no train.
GPQA stores the correct answer apart from the three wrong ones, so the option order is ours: in each split
the correct letters are an even share of A-D in a seeded random order, and the wrong answers fill the
other places in a seeded order per item (without this a search can learn "always answer A").
"""
from __future__ import annotations

import random

from .answers import LETTERS, score_choice
from .base import Item, SplitTask
from .loading import (HubSplit, Row, bad_row, build_items, check_unique_ids, local_file, read_csv,
                      require, rows_from_hub, seeded_split)
from .workflows import seed_workflows

SEED = 0


def format_question(question: str, options: list[str]) -> str:
    lines = [f"({LETTERS[i]}) {o}" for i, o in enumerate(options)]
    return question.strip() + "\n\nOptions:\n" + "\n".join(lines)


def score_choice_item(prediction, item: Item) -> float:
    return score_choice(prediction, item.answer, item.meta.get("options"))


def _answer_format(n: int) -> str:
    return (f"Put only the letter of the correct option in `answer` (one of {LETTERS[0]}-{LETTERS[n - 1]}), "
            f"e.g. {LETTERS[2]}.")


def _description(title: str, what: str, n: int, example: str) -> str:
    return (f"{title}\n**Type**: multiple-choice questions, one correct option.\n**What it tests**: {what}\n"
            f"**Answer format**: {_answer_format(n)}\n{example}\n")


# ------------------------------------------------------------------------------------------ MMLU-Pro

MMLU_PRO_HUB = HubSplit("TIGER-Lab/MMLU-Pro", None, "test", "MMLU-Pro", "data/test-*.parquet")
MMLU_PRO_EXAMPLE = """Example question: Which gas makes up most of the Earth's atmosphere?

Options:
(A) Oxygen
(B) Argon
(C) Nitrogen
(D) Carbon dioxide
Example solution: About 78% of dry air is nitrogen. Answer: C"""


def _mmlu_pro_item(_: int, row: Row) -> Item:
    qid = row.data.get("question_id")
    iid = f"mmlu_pro/{qid}" if qid is not None else None
    question, options, answer = require(row, iid, "question", "options", "answer")
    if qid is None:
        raise bad_row(row, None, "missing 'question_id'")
    options = [str(o) for o in options]
    if not 2 <= len(options) <= len(LETTERS):
        raise bad_row(row, iid, f"expected 2 to {len(LETTERS)} options, found {len(options)}")
    letter = str(answer).strip().upper()
    if len(letter) != 1 or letter not in LETTERS[:len(options)]:
        raise bad_row(row, iid, f"unparsable target: answer {answer!r} is not one of the {len(options)} option letters")
    index = row.data.get("answer_index")
    if index is not None and LETTERS[int(index)] != letter:
        raise bad_row(row, iid, f"answer {letter!r} disagrees with answer_index {index}")
    return Item(iid, format_question(str(question), options), letter,
                {"options": options, "category": row.data.get("category")})


def mmlu_pro(data_dir: str | None) -> SplitTask:
    rows, origin = rows_from_hub("mmlu_pro", data_dir, [MMLU_PRO_HUB])
    items = sorted(build_items(rows, _mmlu_pro_item), key=lambda it: int(it.id.split("/")[1]))
    splits = seeded_split(items, seed=SEED, valid=128, test=800, origin=origin)
    desc = _description("MMLU-Pro", "expert-level knowledge and reasoning across 14 fields (law, physics, "
                        "economics, psychology, ...), with up to ten options per question.", 10, MMLU_PRO_EXAMPLE)
    return SplitTask(name="mmlu_pro", description=desc, splits=splits, scorer=score_choice_item,
                     workflows=seed_workflows(_answer_format(10), role="knowledgeable expert", code=False),
                     source={"origin": origin, "seed": SEED, "valid": 128, "test": 800})


# ------------------------------------------------------------------------------------------ GPQA

GPQA_FILE = "gpqa_diamond.csv"
GPQA_HUB = HubSplit("Idavidrein/gpqa", "gpqa_diamond", "train", "gpqa", "gpqa_diamond.csv", gated=True)
GPQA_VALID, GPQA_TEST = 32, 166
GPQA_EXAMPLE = """Example question: A sample holds 0.50 mol of an ideal gas at 300 K and 1.0 atm. What volume does it occupy?

Options:
(A) 6.2 L
(B) 12.3 L
(C) 24.6 L
(D) 1.2 L
Example solution: V = nRT/P = 0.50 x 0.08206 x 300 / 1.0 = 12.3 L. Answer: B"""


def _gpqa_item(_: int, row: Row) -> dict:
    rid = str(row.data.get("Record ID") or "").strip()
    iid = f"gpqa/{rid}" if rid else None
    if not rid:
        raise bad_row(row, None, "missing 'Record ID'")
    fields = require(row, iid, "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                     "Incorrect Answer 3")
    question, correct, *wrong = (str(f).strip() for f in fields)
    return {"id": iid, "rid": rid, "question": question, "correct": correct, "wrong": wrong,
            "domain": row.data.get("High-level domain")}


def _with_options(split: str, records: list[dict]) -> list[Item]:
    letters = [LETTERS[k % 4] for k in range(len(records))]
    random.Random(f"gpqa-correct-letters-{split}").shuffle(letters)   # str seeds: same on every machine
    items = []
    for rec, letter in zip(records, letters):
        wrong = list(rec["wrong"])
        random.Random(f"gpqa-options-{rec['rid']}").shuffle(wrong)
        options = wrong[:]
        options.insert(LETTERS.index(letter), rec["correct"])
        items.append(Item(rec["id"], format_question(rec["question"], options), letter,
                          {"options": options, "domain": rec["domain"]}))
    return items


def gpqa(data_dir: str | None) -> SplitTask:
    path = local_file(data_dir, GPQA_FILE)
    if path:
        rows, origin = read_csv(path), str(path)
    else:
        rows, origin = rows_from_hub("gpqa", data_dir, [GPQA_HUB], [GPQA_FILE])
    records = sorted((_gpqa_item(i, r) for i, r in enumerate(rows)), key=lambda r: r["rid"])
    placeholders = [Item(r["id"], "", None, {"record": r}) for r in records]
    check_unique_ids(placeholders, origin)
    order = seeded_split(placeholders, seed=SEED, valid=GPQA_VALID, test=GPQA_TEST, origin=origin, exact=True)
    splits = {name: _with_options(name, [it.meta["record"] for it in items]) for name, items in order.items()}
    desc = _description("GPQA (diamond)", "graduate-level biology, chemistry and physics questions written so "
                        "that experts answer them and skilled non-experts with web search mostly do not.", 4,
                        GPQA_EXAMPLE)
    return SplitTask(name="gpqa", description=desc, splits=splits, scorer=score_choice_item,
                     workflows=seed_workflows(_answer_format(4), role="scientist", code=False),
                     source={"origin": origin, "seed": SEED, "valid": GPQA_VALID, "test": GPQA_TEST,
                             "train": "empty: the diamond set has no questions beyond valid and test"})

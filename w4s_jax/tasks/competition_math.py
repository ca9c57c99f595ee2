"""MATH (competition mathematics) as AFlow uses it: the level-5 test problems of Prealgebra, Number Theory,
Precalculus and Counting & Probability, 119 valid / 486 test, scored by answer equivalence (math-verify).

Sources, first found wins:
- AFlow's own files `math_validate.jsonl` and `math_test.jsonl` (fields problem, solution, level, type):
  valid and test are exactly theirs;
- otherwise the maintained mirror EleutherAI/hendrycks_math (the original hub id `hendrycks/competition_math`
  is gone), local snapshot or hub: the 605 level-5 test problems of the four subjects, sorted by item id,
  shuffled with seed 0; valid [:119], test [119:605].
Train: the level-5 problems of the same subjects in the mirror's *train* split (never in valid or test; a
problem whose text also occurs in valid or test is left out). With AFlow's files it is read only from a
local snapshot of the mirror (no download), and is empty without one.
"""
from __future__ import annotations

import hashlib

from .answers import math_reference_answer, score_math
from .base import Item, SplitTask
from .loading import (DataError, HubSplit, HubUnavailable, Row, bad_row, build_items, check_unique_ids, hub_rows,
                      local_file, read_jsonl, require, rows_from_hub, seeded_split)
from .workflows import seed_workflows

SEED = 0
VALID, TEST = 119, 486
AFLOW_FILES = ("math_validate.jsonl", "math_test.jsonl")
MIRROR = "EleutherAI/hendrycks_math"
SUBJECTS = {"prealgebra": "Prealgebra", "number_theory": "Number Theory", "precalculus": "Precalculus",
            "counting_and_probability": "Counting & Probability"}
ROLE = "competition mathematics expert"
ANSWER_FORMAT = ("Put only the final answer in `answer`, as a LaTeX expression without $ signs or \\boxed "
                 "(e.g. \\frac{3}{4}, 2\\sqrt{5}, (1,-2)); simplify it fully and keep exact values rather than "
                 "decimals unless the problem asks for a decimal.")
DESCRIPTION = f"""MATH (level 5: prealgebra, number theory, precalculus, counting and probability)
**Type**: competition mathematics problems (AMC/AIME style) that need several steps of exact reasoning.
**Answer format**: {ANSWER_FORMAT} Answers are compared by mathematical equivalence, so any equal form counts.
Example question: How many positive divisors does $6^3$ have?
Example solution: $6^3 = 2^3 \\cdot 3^3$, so it has $(3+1)(3+1) = 16$ divisors. Answer: 16
"""


def mirror_split(split: str) -> list[HubSplit]:
    return [HubSplit(MIRROR, config, split, "hendrycks_math", f"{config}/{split}-*.parquet") for config in SUBJECTS]


def score_math_item(prediction, item: Item) -> float:
    return score_math(prediction, item.answer)


def item_id(problem: str) -> str:
    """Content-derived, so the same problem has the same id in AFlow's files and in the mirror."""
    return "math/" + hashlib.sha256(problem.strip().encode("utf-8")).hexdigest()[:16]


def _make(_: int, row: Row) -> Item:
    problem = row.data.get("problem")
    iid = item_id(problem) if isinstance(problem, str) and problem.strip() else None
    problem, solution = require(row, iid, "problem", "solution")
    answer = math_reference_answer(str(solution))
    if answer is None:
        raise bad_row(row, iid, "unparsable target: the solution has no \\boxed{...} answer")
    meta = {"type": row.data.get("type"), "level": row.data.get("level"), "solution": solution}
    return Item(iid, problem.strip(), answer, meta)


def _level5_of_subjects(rows: list[Row]) -> list[Row]:
    subjects = set(SUBJECTS.values())
    return [r for r in rows if r.data.get("level") == "Level 5" and r.data.get("type") in subjects]


def _train(rows: list[Row], held_out: set[str]) -> list[Item]:
    seen = set(held_out)
    out = []
    for it in build_items(_level5_of_subjects(rows), _make):
        if it.id not in seen:   # also drops duplicate problems inside the train split
            seen.add(it.id)
            out.append(it)
    return sorted(out, key=lambda it: it.id)


def competition_math(data_dir: str | None) -> SplitTask:
    paths = [local_file(data_dir, f) for f in AFLOW_FILES]
    source: dict = {"seed": SEED, "valid": VALID, "test": TEST, "mirror": MIRROR}
    if all(paths):
        valid = build_items(read_jsonl(paths[0]), _make)
        test = build_items(read_jsonl(paths[1]), _make)
        check_unique_ids(valid + test, f"{paths[0]} + {paths[1]}")
        source["origin"] = f"{paths[0]}, {paths[1]} (AFlow's split)"
        try:   # train only from a local snapshot: no download for a split optimisation never needs
            rows = [r for spec in mirror_split("train") for r in hub_rows(spec, data_dir, allow_hub=False)[0]]
            train = _train(rows, {it.id for it in valid + test})
        except HubUnavailable:
            train = []
            source["train"] = f"empty: no local copy of {MIRROR} (train split) in {data_dir}"
        splits = {"valid": valid, "test": test, "train": train}
    else:
        files = list(AFLOW_FILES)
        test_rows, origin = rows_from_hub("math", data_dir, mirror_split("test"), files)
        pool = sorted(build_items(_level5_of_subjects(test_rows), _make), key=lambda it: it.id)
        if not pool:
            raise DataError(f"{origin}: no level-5 problems of {', '.join(SUBJECTS.values())}")
        splits = seeded_split(pool, seed=SEED, valid=VALID, test=TEST, origin=origin)
        train_rows, _ = rows_from_hub("math", data_dir, mirror_split("train"), files)
        # Level-5 test problems beyond valid + test (none in the current mirror) come first, then the train split.
        held = {it.id for split in splits.values() for it in split}
        splits["train"] = splits["train"] + _train(train_rows, held)
        source["origin"] = origin
    return SplitTask(name="math", description=DESCRIPTION, splits=splits, scorer=score_math_item,
                     workflows=seed_workflows(ANSWER_FORMAT, role=ROLE, code=True), source=source)

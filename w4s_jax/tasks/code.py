"""HumanEval and MBPP: Python function synthesis, scored by running the benchmark's tests in the sandbox.

Splits are AFlow's (the ones W4S reports): HumanEval 33 valid / 131 test, MBPP (sanitized) 86 valid /
341 test, read from AFlow's files `<name>_validate.jsonl` and `<name>_test.jsonl` in the data directory, or
else from the hub datasets (openai/openai_humaneval; google-research-datasets/mbpp, config "sanitized", all
four of its splits) arranged by AFlow's id orders (code_splits.py). Together they hold every item of both
benchmarks, so the `train` split is empty for both.

What a workflow sees (`Item.question`) and returns:
- HumanEval: the benchmark's prompt, verbatim (imports, helper functions, the signature and docstring of
  the function to write, which is the last one).
- MBPP: the benchmark's prompt (one sentence, then the signature line) and its first test, the public
  example AFlow gives workflows (AFlow's `mbpp_public_test.jsonl` holds the same assert with the
  function renamed `candidate`; the function's own name is kept here). Read from the hub, the prompt is
  rebuilt as AFlow built it: the sentence, the import lines before the function and its `def` line (for 16
  of the 427 items AFlow's text differs slightly: trailing spaces, hand-edited parameter names).
- The answer is the complete source of the function, imports and signature included (`{"answer": src}`
  or `src`; a markdown-fenced block is accepted). `Item.answer` is the reference solution in that form
  (one MBPP reference that the sanitized release broke is repaired: MBPP_REFERENCE_ERRATA).
"""
from __future__ import annotations

import ast
import re
import warnings
from typing import Any, Sequence

from .base import SPLITS, Item, SplitTask
from .code_scoring import CodeScorer
from .code_splits import AFLOW_ORDER
from .code_workflows import code_seed_workflows
from .loading import DataError, DataNotFound, HubSplit, Row, bad_row, local_file, read_jsonl, rows_from_hub

FILES = {"valid": "{name}_validate.jsonl", "test": "{name}_test.jsonl"}
HUB = {
    "humaneval": [HubSplit("openai/openai_humaneval", None, "test", "openai_humaneval",
                           "openai_humaneval/test-*.parquet")],
    "mbpp": [HubSplit("google-research-datasets/mbpp", "sanitized", split, "mbpp", f"sanitized/{split}-*.parquet")
             for split in ("train", "validation", "test", "prompt")],
}
SOURCES = {
    "humaneval": "openai/openai_humaneval (MIT); split as AFlow's humaneval_validate.jsonl / humaneval_test.jsonl",
    "mbpp": "google-research-datasets/mbpp, sanitized (CC BY 4.0); split as AFlow's mbpp_validate.jsonl / "
            "mbpp_test.jsonl",
}

HUMANEVAL_DESCRIPTION = '''\
Task type: Python function synthesis (HumanEval). Each task is the beginning of a Python file: imports,
sometimes helper functions, and then the signature and docstring of the function to write (always the last
one in the text). The docstring says what the function must do and usually shows a few example calls.

Answer format: the complete source of that function as plain Python text: any imports it needs, the `def`
line exactly as given, and the body (helper functions it calls may be included). No markdown fences, no
tests, no example calls, no printing: the function must return its result. The answer is scored by
running the benchmark's hidden unit tests on it in a sandbox with a time limit: it counts as correct only
if every test passes, and code that loops or crashes counts as wrong.

Worked example.
Task:
def count_vowels(word: str) -> int:
    """Return how many vowels (a, e, i, o, u, either case) the word contains.
    >>> count_vowels("Banana")
    3
    """
Answer:
def count_vowels(word: str) -> int:
    return sum(1 for ch in word.lower() if ch in "aeiou")
'''

MBPP_DESCRIPTION = '''\
Task type: Python function synthesis (MBPP, "Mostly Basic Python Problems"). Each task states in one
sentence what a Python function must do, ends with the function's signature line, and gives one example
test (an `assert`) that a correct function passes.

Answer format: the complete source of the function as plain Python text: any imports it needs, the `def`
line with the function name from the task, and the body. No markdown fences, no tests, no printing: the
function must return its result. The answer is scored by running the benchmark's hidden tests (the example
plus a few more) on it in a sandbox with a time limit: it counts as correct only if every test passes, and
code that loops or crashes counts as wrong.

Worked example.
Task:
Write a function to return the second largest number in a list of distinct integers.

def second_largest(nums):

Your code should pass this test:
assert second_largest([4, 1, 9, 7]) == 7
Answer:
def second_largest(nums):
    return sorted(nums)[-2]
'''

ANSWER_FORMAT = ("Put in `answer` the complete source of the Python function the task asks for: imports it "
                 "needs, the `def` line with the name and parameters given in the task, and the body. Plain "
                 "Python text only: no markdown fences, no explanations, no tests, no example calls, no "
                 "printing; the function returns its result.")
ROLE = "expert Python programmer"


class CodeTask(SplitTask):
    """A SplitTask whose answers are scored in batches, concurrently, in sandboxed workers."""

    async def score_many(self, predictions: Sequence[Any], items: Sequence[Item]) -> list[float]:
        return await self.scorer.score_many(predictions, items)


def _checked(row: Row, required: dict[str, type]) -> str:
    """The row's id after checking its fields' presence and types (DataError naming file, line and id)."""
    item_id = str(row.data.get("task_id", "?"))
    for key, typ in required.items():
        if row.data.get(key) is None:
            raise bad_row(row, item_id, f"missing {key!r}")
        if not isinstance(row.data[key], typ):
            raise bad_row(row, item_id, f"field {key!r} has the wrong type ({type(row.data[key]).__name__})")
    if not row.data["entry_point"].isidentifier():
        raise bad_row(row, item_id, f"entry_point {row.data['entry_point']!r} is not a Python name")
    return item_id


def _parses(source: str, where: str, what: str) -> None:
    try:
        with warnings.catch_warnings():  # invalid escapes in some reference solutions' strings
            warnings.simplefilter("ignore")
            ast.parse(source)
    except SyntaxError as e:
        raise DataError(f"{where}: {what} is not valid Python (line {e.lineno}: {e.msg})") from None


def humaneval_item(row: dict, where: str) -> Item:
    entry = row["entry_point"]
    _parses(row["prompt"], where, "prompt")
    _parses(row["test"], where, "test")
    reference = row["prompt"] + row["canonical_solution"]
    _parses(reference, where, "prompt + canonical_solution")
    # The prompt runs first: its imports and helper functions (e.g. `poly`, `encode_cyclic`) are there for
    # the candidate, whose own definition of the entry point replaces the prompt's stub.
    return Item(id=str(row["task_id"]), question=row["prompt"], answer=reference,
                meta={"entry_point": entry, "setup": row["prompt"], "check": f"{row['test']}\n\ncheck({entry})\n",
                      "public_tests": [], "source": where})


def mbpp_question(prompt: str, public_test: str) -> str:
    return f"{prompt}\n\nYour code should pass this test:\n{public_test}"


# Reference solutions that are broken in the sanitized MBPP release, repaired as in the original MBPP file
# (mbpp.jsonl): task id -> (text in the released code, its replacement). Only `Item.answer` changes; a copy
# of the files that is already repaired is left as it is.
MBPP_REFERENCE_ERRATA = {
    "630": ("def adjac(test_tup): \n", "def adjac(ele, sub = []): \n"),   # the helper lost its parameters
}


def mbpp_item(row: dict, where: str) -> Item:
    tests = row["test_list"]
    if not tests or not all(isinstance(t, str) and t.strip() for t in tests):
        raise DataError(f"{where}: test_list must be a non-empty list of asserts")
    imports = row.get("test_imports") or []
    if not isinstance(imports, list) or not all(isinstance(t, str) for t in imports):
        raise DataError(f"{where}: test_imports must be a list of import lines")
    check = "def check():\n" + "".join(f"    {t}\n" for t in tests) + "\ncheck()\n"
    _parses(check, where, "test_list")
    code = row["code"]
    broken, repaired = MBPP_REFERENCE_ERRATA.get(str(row["task_id"]), (None, None))
    if broken is not None and code.startswith(broken):
        code = repaired + code[len(broken):]
    _parses(code, where, "code")
    return Item(id=str(row["task_id"]), question=mbpp_question(row["prompt"], tests[0]), answer=code,
                meta={"entry_point": row["entry_point"], "setup": "\n".join(imports), "check": check,
                      "public_tests": [tests[0]], "source": where})


_FIELDS = {
    "humaneval": ({"task_id": str, "prompt": str, "entry_point": str, "canonical_solution": str, "test": str},
                  humaneval_item),
    "mbpp": ({"task_id": (int, str), "prompt": str, "entry_point": str, "code": str, "test_list": list},
             mbpp_item),
}


def _mbpp_from_hub(row: Row) -> Row:
    """A hub row of sanitized MBPP in the shape of AFlow's files (entry_point and prompt added)."""
    item_id = str(row.data.get("task_id", "?"))
    code, tests, text = row.data.get("code"), row.data.get("test_list"), row.data.get("prompt")
    if not (isinstance(code, str) and isinstance(tests, list) and tests and isinstance(text, str)):
        raise bad_row(row, item_id, "missing 'code', 'prompt' or 'test_list'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defs = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError as e:
        raise bad_row(row, item_id, f"code is not valid Python (line {e.lineno}: {e.msg})") from None
    entry = next((d for d in defs if re.search(rf"\b{re.escape(d)}\s*\(", str(tests[0]))), None)
    if entry is None:
        raise bad_row(row, item_id, "no function of the code is called by the first test")
    sig = re.search(rf"^def\s+{re.escape(entry)}\b.*$", code, re.M)
    imports = [line for line in code[: sig.start()].splitlines() if line.startswith(("import ", "from "))]
    prompt = text + "\n" + "".join(f"{line}\n" for line in imports) + sig.group(0) if imports \
        else f"{text}\n\n{sig.group(0)}"
    return Row(row.where, {**row.data, "entry_point": entry, "prompt": prompt})


def _items(name: str, rows: list[Row]) -> list[Item]:
    required, make = _FIELDS[name]
    items, seen = [], {}
    for row in rows:
        item_id = _checked(row, required)
        where = f"{row.where} (id {item_id})"
        item = make(row.data, where)
        if item.id in seen:
            raise DataError(f"{where}: id {item.id} already appears at {seen[item.id]}")
        seen[item.id] = where
        items.append(item)
    return items


def _aflow_order(name: str, items: list[Item], origin: str) -> dict[str, list[Item]]:
    """AFlow's valid and test splits, in AFlow's order; items outside them (none in the releases) go to train."""
    by_id = {it.id: it for it in items}
    prefix = "HumanEval/" if name == "humaneval" else ""
    splits = {"train": []}
    for split, order in AFLOW_ORDER[name].items():
        missing = [f"{prefix}{i}" for i in order if f"{prefix}{i}" not in by_id]
        if missing:
            raise DataError(f"{origin}: {len(missing)} items of AFlow's {split} split are missing (e.g. "
                            f"{', '.join(missing[:3])}); is the download complete?")
        splits[split] = [by_id.pop(f"{prefix}{i}") for i in order]
    splits["train"] = list(by_id.values())
    return splits


def load_code_splits(name: str, data_dir: str | None) -> tuple[dict[str, list[Item]], dict]:
    """{split: items} from AFlow's files in `data_dir`, else from the hub (a local snapshot under data_dir
    first); bad rows raise DataError naming file, line and id."""
    names = {split: pattern.format(name=name) for split, pattern in FILES.items()}
    paths = {split: local_file(data_dir, f) for split, f in names.items()}
    if all(paths.values()):
        splits = {s: _items(name, read_jsonl(paths[s])) if s in paths else [] for s in SPLITS}
        ids: dict[str, str] = {}
        for split in ("valid", "test"):   # one id in both files would leak test items into validation
            for it in splits[split]:
                if it.id in ids:
                    raise DataError(f"{it.meta['source']}: id {it.id} already appears at {ids[it.id]}")
                ids[it.id] = it.meta["source"]
        origin = {s: str(p) for s, p in paths.items()}
    else:
        try:
            rows, origin = rows_from_hub(name, data_dir, HUB[name], names.values())
        except DataNotFound as e:
            raise DataNotFound(f"{e}\n  The files are AFlow's split of {SOURCES[name].split(';')[0]}: AFlow's data "
                               "release (https://github.com/FoundationAgents/AFlow, data/datasets) ships them.") from None
        if name == "mbpp":
            rows = [_mbpp_from_hub(r) for r in rows]
        splits = _aflow_order(name, _items(name, rows), origin)
    return splits, {"origin": origin, "upstream": SOURCES[name], "sizes": {s: len(v) for s, v in splits.items()},
                    "train": "empty: AFlow's valid and test splits hold every item of the benchmark"}


def _task(name: str, description: str, data_dir: str | None) -> CodeTask:
    splits, source = load_code_splits(name, data_dir)
    return CodeTask(name=name, description=description, splits=splits, scorer=CodeScorer(),
                    workflows=code_seed_workflows(ANSWER_FORMAT, role=ROLE), source=source)


def humaneval(data_dir: str | None) -> CodeTask:
    return _task("humaneval", HUMANEVAL_DESCRIPTION, data_dir)


def mbpp(data_dir: str | None) -> CodeTask:
    return _task("mbpp", MBPP_DESCRIPTION, data_dir)



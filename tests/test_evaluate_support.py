"""Shared helpers for the evaluation tests (holds no tests): a scripted strong model that knows each item's
reference answer, answers right or wrong by a fixed rule, and so implies each seed workflow's accuracy."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from w4s_jax.sim import SimServer
from w4s_jax.tasks.base import Item

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WRONG = "zqxj"   # scores 0 under every scorer: no number, no option letter, no overlapping token


def is_code(task) -> bool:
    return task.name in ("humaneval", "mbpp")


def good(k: int) -> bool:
    """Items answered right the first time: 2 in 3 (the first item, k = 0, is answered wrong)."""
    return k % 3 != 0


def right_answer(task, item: Item) -> str:
    """A reply the task's scorer counts as right: the reference in the form the task's workflows return."""
    if is_code(task):
        return item.answer
    answer = item.answer
    if isinstance(answer, (list, tuple)):   # several references (DROP): any one
        answer = answer[0]
        if isinstance(answer, (list, tuple)):
            answer = ", ".join(map(str, answer))
    return str(answer)


def wrong_answer(task, item: Item) -> str:
    if is_code(task):   # a function with the right name that fails every test
        return f"def {item.meta['entry_point']}(*args, **kwargs):\n    raise NotImplementedError\n"
    return WRONG


def public_asserts(item: Item) -> list[str]:
    """What self_test runs: the asserts in the question, else the ones the scripted tester writes."""
    given = [line.strip() for line in item.question.splitlines() if line.strip().startswith("assert ")]
    return given or public_test_asserts(item)


def public_test_asserts(item: Item) -> list[str]:
    """The scripted tester's asserts for HumanEval: the first `assert candidate(...)` of the hidden test,
    with the function's own name (none for items whose test has no such line)."""
    entry = item.meta["entry_point"]
    for line in item.meta["check"].splitlines():
        line = line.strip()
        if line.startswith("assert candidate(") and "\\" not in line and line.count("(") == line.count(")"):
            return [re.sub(r"\bcandidate\b", entry, line)]
    return []


def expected_accuracy(task, workflow: str, items: list[Item]) -> float:
    """The accuracy the script below implies for a seed workflow."""
    if workflow == "self_refine":   # the reviewer catches every wrong answer, the revision is right
        hits = [1.0] * len(items)
    elif workflow == "self_test":   # a wrong first answer is revised when some example fails on it
        hits = [1.0 if good(k) or public_asserts(it) else 0.0 for k, it in enumerate(items)]
    else:                           # cot, cot_sc, debate, dynamic_role, code (math): right iff good(k)
        hits = [1.0 if good(k) else 0.0 for k in range(len(items))]
    return sum(hits) / len(hits)


def _keys(body: dict) -> list[str]:
    system = "\n".join(m["content"] for m in body["messages"] if m["role"] == "system")
    m = re.search(r"keys are exactly: (.*)\.", system)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


class OracleResponder:
    """Replies to the seed workflows' requests about `items` of `task` (see expected_accuracy)."""

    def __init__(self, task, items: list[Item]):
        self.task = task
        # longest question first: a question that contains another one is matched as itself
        self.order = sorted(range(len(items)), key=lambda k: -len(items[k].question))
        self.items = items

    def _item(self, text: str) -> tuple[int, Item]:
        for k in self.order:
            if self.items[k].question in text:
                return k, self.items[k]
        raise ValueError(f"no item in the request: {text[:200]!r}")

    def __call__(self, body: dict, choice: int) -> str:
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        keys = _keys(body)
        k, it = self._item(user)
        right, wrong = right_answer(self.task, it), wrong_answer(self.task, it)
        if "expert" in keys:       # dynamic_role's router: an unknown name falls back to the task's expert
            return json.dumps({"reasoning": "routing", "expert": "nobody"})
        if "correct" in keys:      # self_refine's reviewer
            proposed = user.split("# Proposed answer:\n", 1)[1]
            return json.dumps({"feedback": "checked", "correct": "True" if proposed == right else "False"})
        if "tests" in keys:        # self_test's tester (tasks without asserts in the question)
            return json.dumps({"tests": "\n".join(public_test_asserts(it))})
        if "code" in keys:         # the maths `code` workflow: a program returning the answer, or crashing
            program = f"def solution():\n    return {right!r}\n" if good(k) else "def solution():\n    return 1 / 0\n"
            return json.dumps({"reasoning": "compute", "code": program})
        if "# Reviewer feedback:" in user or "# Failed examples:" in user:
            return json.dumps({"reasoning": "revised", "answer": right})
        n = int(body.get("n") or 1)
        if n > 1:                  # samples: a majority right for good items, a majority wrong otherwise
            ok = choice < (n // 2 + 1 if good(k) else n // 2)
        else:
            ok = good(k)
        return json.dumps({"reasoning": "thinking", "answer": right if ok else wrong})


def oracle_server(task, items: list[Item]) -> SimServer:
    return SimServer(OracleResponder(task, items), max_lifetime_s=600).start()


def get_config():
    spec = importlib.util.spec_from_file_location("evaluate_config", REPO / "configs" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def config(task: str, workflow: str, base_url: str, workdir, *, data_dir=DATA, limit: int = 6, **kw):
    """configs/evaluate.py for a run against the local server (progress bar off)."""
    cfg = get_config()
    cfg.task, cfg.data_dir, cfg.split, cfg.workflow, cfg.limit = task, str(data_dir), "valid", workflow, limit
    cfg.executor.base_url, cfg.executor.model, cfg.workdir, cfg.progress = base_url, "sim", str(workdir), False
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg

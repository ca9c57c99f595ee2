"""Scoring code answers (HumanEval, MBPP): run each candidate with the benchmark's tests in the sandbox.

A candidate never runs in our process. A batch of candidates goes to one bubblewrap worker of
`w4s_jax.rollout` (the same sandbox workflows run in); there each test program runs in its own
`execute_code` child (fresh session, CPU and memory rlimits, wall-clock deadline, killed as a group),
`parallel` of them at once. A loop, a crash, `sys.exit`, a fork bomb or a memory blow-up is a failed item,
never a hung scorer. The test program is `setup + candidate + check`, where the item supplies `setup`
(trusted code the benchmark gives before the candidate: HumanEval's prompt with its helper functions, MBPP's
test imports) and `check` (the benchmark's tests and the call that runs them). A candidate that prints its
result instead of returning it fails the tests like any other wrong answer.
"""
from __future__ import annotations

import ast
import asyncio
import math
import os
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from .base import Item

PASSED = "passed"
MAX_SOURCE_CHARS = 100_000

# The trusted runner the sandbox worker loads: one `execute_code` per test program.
_RUNNER = '''
def solver(agent, task):
    return agent.execute_code(task, timeout=__TIMEOUT__)
'''

# What each `execute_code` child runs: the program in a namespace of its own (so no name in the candidate,
# `solution` included, is mistaken for the snippet's result), `__name__` not "__main__" (demo blocks under
# `if __name__ == "__main__":` stay out), and a failed assert reported with its line.
_HARNESS = '''
def _run_tests(program):
    import traceback
    try:
        exec(compile(program, "<candidate>", "exec"), {"__name__": "__candidate__"})
    except AssertionError as e:
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == "<candidate>"]
        text = program.splitlines()[lines[-1] - 1].strip() if lines else ""
        raise AssertionError(("failed: " + text[:300]) if text else str(e)) from None
    return __PASSED__
_run_tests(_program)
'''.replace("__PASSED__", repr(PASSED))

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)


def extract_source(prediction: Any, entry_point: str | None = None) -> str | None:
    """The candidate's source from a workflow's answer: `{"answer": src}` or `src`; when the text holds
    markdown code fences, the fenced block that defines `entry_point` (else the first block)."""
    if isinstance(prediction, dict):
        prediction = prediction.get("answer")
    if not isinstance(prediction, str) or not prediction.strip():
        return None
    text = prediction
    if "```" in text:
        blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
        if blocks:
            defining = [b for b in blocks if entry_point and re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
            text = (defining or blocks)[0]
        else:  # an unclosed fence: drop the opening line
            text = re.sub(r"^\s*```[^\n]*\n", "", text).replace("```", "")
    return text


def syntax_problem(source: str) -> str | None:
    """Why the source cannot run at all (checked here by parsing only, nothing is executed), or None."""
    if len(source) > MAX_SOURCE_CHARS:
        return f"the answer is longer than {MAX_SOURCE_CHARS} characters"
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in the answer's strings: its business
            warnings.simplefilter("ignore")
            ast.parse(source, "<answer>")
    except SyntaxError as e:
        return f"the answer is not valid Python (line {e.lineno}: {e.msg})"
    except (ValueError, RecursionError, MemoryError) as e:
        return f"the answer cannot be parsed: {type(e).__name__}"
    return None


def test_program(source: str, item: Item) -> str:
    """setup + candidate + check, for one item (fields in `item.meta`)."""
    return "\n".join([item.meta.get("setup", ""), source, "", item.meta["check"], ""])


def _tidy_error(text: str) -> str:
    """The runner's error as the candidate's: without the runner's own frame and wrapper names."""
    text = re.sub(r" \(workflow line \d+, in solver\)$", "", text)
    return text.removeprefix("Exception: ").replace("execute_code: ", "")


@dataclass
class CodeOutcome:
    passed: bool
    error: str | None = None     # why it failed: the failed assert, the exception, the timeout


class _PassMarker:
    """The runner's scorer: an item passed when its snippet returned the marker."""
    name = "code-tests"

    def score(self, prediction, item) -> float:
        return 1.0 if prediction == PASSED else 0.0


def run_sync(coro):
    """Run a coroutine to completion from synchronous code, also when this thread already runs a loop
    (then in a helper thread: a synchronous caller inside a loop blocks it either way)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # handed to the caller below
            box["error"] = e
    t = threading.Thread(target=target, name="code-scoring")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class CodeScorer:
    """Runs candidates against their items' tests; see the module docstring.

    timeout_s: wall-clock limit of one test program; parallel: test programs running at once (0: the
    number of CPUs); memory_mb: address-space limit of each; sandbox: "bwrap" (or "none", trusted code only).
    """
    timeout_s: float = 15.0
    parallel: int = 0
    memory_mb: int = 1024
    sandbox: str = "bwrap"

    def __post_init__(self):
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"CodeScorer: timeout_s must be in (0, 60], got {self.timeout_s}")
        if self.parallel < 0:
            raise ValueError(f"CodeScorer: parallel must be >= 0, got {self.parallel}")

    @property
    def workers(self) -> int:
        return self.parallel or max(1, min(32, os.cpu_count() or 1))

    async def run(self, predictions: Sequence[Any], items: Sequence[Item]) -> list[CodeOutcome]:
        """One outcome per (prediction, item), in order; programs that cannot run are failed without running."""
        from w4s_jax.rollout.evaluate import evaluate_workflow
        from w4s_jax.rollout.sandbox import SandboxLimits

        if len(predictions) != len(items):
            raise ValueError(f"CodeScorer: {len(predictions)} predictions for {len(items)} items")
        outcomes: list[CodeOutcome | None] = [None] * len(items)
        snippets, where = [], []
        for k, (pred, item) in enumerate(zip(predictions, items)):
            source = extract_source(pred, item.meta.get("entry_point"))
            problem = "the answer holds no code" if source is None else syntax_problem(source)
            if problem is not None:
                outcomes[k] = CodeOutcome(False, problem)
                continue
            snippets.append(Item(id=item.id, question=f"_program = {test_program(source, item)!r}\n{_HARNESS}",
                                 answer=None))
            where.append(k)
        if snippets:
            p = min(self.workers, len(snippets))
            # Item threads block on their child; a thread or two beyond `p` keeps the fork server fed.
            threads = min(len(snippets), p + 2)
            rounds = math.ceil(len(snippets) / p)
            limits = SandboxLimits(exec_parallel=p, exec_memory_mb=self.memory_mb)
            res = await evaluate_workflow(
                _RUNNER.replace("__TIMEOUT__", repr(float(self.timeout_s))), _PassMarker(), snippets, None,
                sandbox=self.sandbox, threads=threads, limits=limits,
                item_timeout_s=3 * self.timeout_s + 30, eval_timeout_s=(rounds + 2) * self.timeout_s + 60)
            for k, rec in zip(where, res.records):
                if rec.score == 1.0:
                    outcomes[k] = CodeOutcome(True)
                else:
                    err = rec.error or rec.infra_error or f"the tests returned {rec.answer!r}"
                    outcomes[k] = CodeOutcome(False, _tidy_error(err))
        return outcomes  # type: ignore[return-value]

    async def score_many(self, predictions: Sequence[Any], items: Sequence[Item]) -> list[float]:
        return [1.0 if o.passed else 0.0 for o in await self.run(predictions, items)]

    def __call__(self, prediction: Any, item: Item) -> float:
        return run_sync(self.score_many([prediction], [item]))[0]

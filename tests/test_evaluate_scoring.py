"""evaluate_workflow's scoring hooks: a task's async `score_many` gets every answer in one call (and a
failure of its machinery makes the items unmeasured, not wrong); `on_result` reports each item once."""
from __future__ import annotations

import asyncio

import pytest

from test_rollout_support import COT, ArithTask, expected_accuracy, run, sandbox_or_skip, start_server
from w4s_jax.rollout import Executor, evaluate_workflow

pytestmark = pytest.mark.timeout(120)
N = 8


class BatchTask(ArithTask):
    """ArithTask scored through `score_many`, which must see all answers at once."""

    def __init__(self, n, fail=None):
        super().__init__(n)
        self.batches, self.fail = [], fail

    def score(self, prediction, item):  # pragma: no cover - the batch path must be taken
        raise AssertionError("score() called although score_many exists")

    async def score_many(self, predictions, items):
        self.batches.append([it.id for it in items])
        await asyncio.sleep(0.01)   # a real batch scorer awaits its sandbox
        if self.fail == "raise":
            raise RuntimeError("scoring sandbox unavailable")
        scores = [ArithTask.score(self, p, it) for p, it in zip(predictions, items)]
        return scores[:-1] if self.fail == "short" else scores


def _evaluate(task, **kw):
    srv = start_server()

    async def go():
        async with Executor(srv.base_url, model="sim") as ex:
            return await evaluate_workflow(COT, task, task.items("valid"), ex, **kw)
    try:
        return run(go())
    finally:
        srv.stop()


def test_score_many_gets_every_answer_in_one_call_and_on_result_each_item_once():
    sandbox_or_skip()
    task, seen = BatchTask(N), []
    res = _evaluate(task, on_result=seen.append)
    assert task.batches == [[f"q{k}" for k in range(N)]]
    assert sorted(seen) == list(range(N))
    assert res.accuracy == pytest.approx(expected_accuracy("cot", N)) and res.infra_errors == 0


@pytest.mark.parametrize("fail", ["raise", "short"])
def test_a_failing_batch_scorer_leaves_the_items_unmeasured_not_wrong(fail):
    sandbox_or_skip()
    res = _evaluate(BatchTask(N, fail=fail))
    assert res.accuracy is None and res.infra_errors == N and res.workflow_errors == 0
    assert all(r.infra_error.startswith("scoring failed:") and r.score is None for r in res.records)
    assert all(r.answer is not None for r in res.records)   # the answers are kept

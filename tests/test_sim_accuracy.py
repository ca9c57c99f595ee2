"""Accuracy of the seed workflows measured through the whole stack (sandboxed evaluate_workflow, Executor,
HTTP, the simulated server in its own process) against the model's documented expectations, and the
techniques' effects in the documented direction with margins beyond sampling error."""
from __future__ import annotations

import asyncio
import math
import re
import statistics
from pathlib import Path

import pytest

from test_rollout_support import sandbox_or_skip
from w4s_jax.rollout import Executor, WorkerPool, evaluate_workflow
from w4s_jax.sim import SIM_MODEL, expected as E
from w4s_jax.sim.process import SimProcess
from w4s_jax.tasks import get

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


async def _evaluate(sources: dict[str, str], task, items, base_url: str, cache_path=None) -> dict:
    async with Executor(base_url, model=SIM_MODEL, max_concurrency=256, cache_path=cache_path, max_retries=0) as ex, \
            WorkerPool(1) as pool:
        out = {}
        for name, src in sources.items():
            out[name] = await evaluate_workflow(src, task, items, ex, threads=128, pool=pool, eval_timeout_s=300)
            out[name].http_requests = ex.stats.http_requests
        return out


class Measured:
    """Seed workflows (and variants) of one task evaluated on its 500 test items."""

    def __init__(self, task_name: str, variants: dict[str, str] | None = None, data_dir: str | None = None):
        self.task = get(task_name, data_dir)
        self.items = self.task.items("test")
        self.profiles = E.test_profiles(task_name, data_dir)
        sources = {**self.task.seed_workflows(), **(variants or {})}
        args = ["--simulate", task_name] + (["--data_dir", data_dir] if data_dir else [])
        with SimProcess(args=args) as srv:
            self.results = asyncio.run(_evaluate(sources, self.task, self.items, srv.base_url))

    def scores(self, name: str) -> list[float]:
        res = self.results[name]
        assert res.infra_errors == 0 and res.workflow_errors == 0, res.note
        return [r.score for r in res.records]


def _within_three_se(measured: Measured, name: str, expect: E.Expectation) -> None:
    acc = statistics.mean(measured.scores(name))
    assert abs(acc - expect.mean) <= 3 * expect.se, (f"{measured.task.name} {name}: measured {acc:.3f}, "
                                                      f"expected {expect.mean:.3f} +- {expect.se:.3f}")


def _gain(better: list[float], worse: list[float]) -> tuple[float, float]:
    """Mean paired difference and its standard error."""
    d = [a - b for a, b in zip(better, worse)]
    return statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d))


def _no_format(src: str, answer_format: str) -> str:
    out = src.replace(answer_format, "")
    assert out != src
    return out


@pytest.fixture(scope="module")
def arith() -> Measured:
    sandbox_or_skip()
    from w4s_jax.tasks.synthetic import ARITH_ANSWER_FORMAT
    seeds = get("synth_arith").seed_workflows()
    return Measured("synth_arith", {
        "cot_sc_t0": seeds["cot_sc"].replace("temperature=0.8", "temperature=0.0"),
        "cot_no_format": _no_format(seeds["cot"], ARITH_ANSWER_FORMAT)})


@pytest.mark.parametrize("name", E.SEED_WORKFLOWS)
def test_seed_workflow_accuracy_matches_the_model(arith, name):
    _within_three_se(arith, name, E.expected_accuracy(name, arith.profiles))


def test_technique_matters_in_the_documented_direction(arith):
    cot = arith.scores("cot")
    # Majority of 5 at temperature 0.8 beats one greedy call...
    gain, se = _gain(arith.scores("cot_sc"), cot)
    assert gain > 3 * se, (gain, se)
    # ... and at temperature 0 it is the same call five times: the same answer on every item.
    assert [r.answer for r in arith.results["cot_sc_t0"].records] == [r.answer for r in arith.results["cot"].records]
    # Missing format instructions cost accuracy (some answers come back in words).
    gain, se = _gain(cot, arith.scores("cot_no_format"))
    assert gain > 3 * se, (gain, se)
    words = [r.answer["answer"] for r in arith.results["cot_no_format"].records if not re.search(r"\d", str(r.answer))]
    assert len(words) > 50
    _within_three_se(arith, "cot_no_format", E.expected_accuracy(lambda it: E.cot(it, format_ok=False),
                                                                 arith.profiles))
    # Verification helps.
    gain, se = _gain(arith.scores("self_refine"), cot)
    assert gain > 3 * se, (gain, se)
    # Code, executed, beats reasoning in words on the hardest items.
    hard = [i for i, it in enumerate(arith.items) if it.meta["steps"] >= 7]
    assert len(hard) >= 100
    gain, se = _gain([arith.scores("code")[i] for i in hard], [cot[i] for i in hard])
    assert gain > 3 * se, (gain, se)
    # Each costs what it asks for: five samples cost more than one call, and so does a debate.
    cost = {n: arith.results[n].usage["cost_usd"] for n in ("cot", "cot_sc", "debate")}
    assert cost["cot_sc"] > 3 * cost["cot"] > 0 and cost["debate"] > cost["cot_sc"]


@pytest.mark.parametrize("name", E.SEED_WORKFLOWS)
def test_seed_workflow_accuracy_on_the_unit_conversions(units, name):
    _within_three_se(units, name, E.expected_accuracy(name, units.profiles))


@pytest.fixture(scope="module")
def units() -> Measured:
    sandbox_or_skip()
    return Measured("synth_units")


def test_cached_replay_gives_identical_accuracies(tmp_path):
    sandbox_or_skip()
    task = get("synth_arith")
    items = task.items("valid")[:100]
    seeds = task.seed_workflows()
    sources = {n: seeds[n] for n in ("debate", "cot_sc", "code")}    # sampled calls and code execution
    cache = str(tmp_path / "replay.sqlite")
    with SimProcess(args=["--simulate", "synth_arith"]) as srv:
        first = asyncio.run(_evaluate(sources, task, items, srv.base_url, cache_path=cache))
    # The server is gone: the replay can only come from the cache (a miss would be an infrastructure error).
    replay = asyncio.run(_evaluate(sources, task, items, srv.base_url, cache_path=cache))
    for n in sources:
        assert replay[n].accuracy == first[n].accuracy is not None
        assert [r.answer for r in replay[n].records] == [r.answer for r in first[n].records]
    assert replay["code"].http_requests == 0


@pytest.mark.skipif(not (DATA / "gsmhardv2.jsonl").exists(), reason="../shared/data/gsmhardv2.jsonl is absent")
def test_real_gsm_hard_items_are_answered():
    sandbox_or_skip()
    seeds = get("gsm_hard", str(DATA)).seed_workflows()
    m = Measured.__new__(Measured)
    m.task = get("gsm_hard", str(DATA))
    m.items = m.task.items("test")
    m.profiles = E.test_profiles("gsm_hard", str(DATA))
    with SimProcess(args=["--simulate", "gsm_hard", "--data_dir", str(DATA)]) as srv:
        m.results = asyncio.run(_evaluate({n: seeds[n] for n in ("cot", "code")}, m.task, m.items, srv.base_url))
    for name in ("cot", "code"):
        _within_three_se(m, name, E.expected_accuracy(name, m.profiles))

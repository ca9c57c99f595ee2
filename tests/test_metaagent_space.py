"""The tiny meta-agent's workflow space: uniform sampling, valid replies, describe() round trips, and a sample
of workflows run in the sandbox against the simulated executor."""
from __future__ import annotations

import asyncio
import collections
import random

import pytest
from scipy.stats import chisquare

from test_rollout_support import sandbox_or_skip
from w4s_jax.metaagent.describe import describe
from w4s_jax.metaagent.render import render_code
from w4s_jax.metaagent.space import (SHARED_KNOBS, TECHNIQUE_KNOBS, TECHNIQUES, Design, designs, knob_space,
                                     probability, sample_action, sample_design, task_style)
from w4s_jax.rollout.actions import extract_workflow
from w4s_jax.rollout.evaluate import check_workflow_code
from w4s_jax.tasks import get
from w4s_jax.tasks.synthetic import ARITH_ANSWER_FORMAT, ARITH_ROLE, UNITS_ANSWER_FORMAT, UNITS_ROLE


@pytest.fixture(scope="module")
def tasks():
    return {n: get(n) for n in ("synth_arith", "synth_units")}


def test_space_size_and_probabilities():
    all_designs = designs()
    assert len(all_designs) == len(set(all_designs)) == 896
    assert abs(sum(probability(d) for d in all_designs) - 1.0) < 1e-9
    for t in TECHNIQUES:
        space = knob_space(t)
        assert set(space) == set(SHARED_KNOBS) | set(TECHNIQUE_KNOBS[t])
        n = 1
        for values in space.values():
            n *= len(values)
        assert len(designs(t)) == n
    with pytest.raises(ValueError):
        Design.of("cot", role="expert")                    # knobs missing
    with pytest.raises(ValueError):
        Design.of("debate", **{**{k: v[0] for k, v in knob_space("debate").items()}, "debaters": 9})


def test_sampling_matches_the_stated_distribution():
    """Every design is drawn with `probability(design)`: technique uniform, each knob uniform and independent
    (a chi-square test over all 896 designs and over the techniques)."""
    rng = random.Random(1234)
    n = 120_000
    counts = collections.Counter(sample_design(rng) for _ in range(n))
    all_designs = designs()
    assert set(counts) <= set(all_designs)
    observed = [counts[d] for d in all_designs]
    expected = [n * probability(d) for d in all_designs]
    assert min(expected) > 50
    assert chisquare(observed, expected).pvalue > 1e-3
    by_technique = collections.Counter(d.technique for d in counts.elements())
    assert chisquare([by_technique[t] for t in TECHNIQUES]).pvalue > 1e-3
    # the knob the simulated executor rewards most is not favoured
    reasoning = collections.Counter(d["reasoning"] for d in counts.elements())
    assert abs(reasoning[True] / n - 0.5) < 0.01


def test_task_style_comes_from_the_seed_workflows(tasks):
    assert task_style(tasks["synth_arith"]).role == ARITH_ROLE
    assert task_style(tasks["synth_arith"]).answer_format == ARITH_ANSWER_FORMAT
    assert task_style(tasks["synth_units"]).role == UNITS_ROLE
    assert task_style(tasks["synth_units"]).answer_format == UNITS_ANSWER_FORMAT

    class Bare:
        name, description = "bare", "no seeds"

        def seed_workflows(self):
            return {}
    assert task_style(Bare()).role and task_style(Bare()).answer_format


def test_every_sampled_action_is_a_valid_reply(tasks):
    rng = random.Random(7)
    for k in range(300):
        task = tasks["synth_arith" if k % 2 else "synth_units"]
        action = sample_action(rng, task)
        analysis, _, rest = action.partition("```python\n")
        assert analysis.strip() and "```" not in analysis and rest.endswith("```")   # nothing after the block
        code = extract_workflow(action)
        check_workflow_code(code)
        assert code.startswith("def solver(agent, task):") and "import " not in code.replace(
            "from collections import Counter", "")
        compile(code, "<workflow>", "exec")


def test_describe_round_trips_every_design(tasks):
    everything = designs()
    for name, sample in (("synth_arith", everything), ("synth_units", random.Random(5).sample(everything, 150))):
        style = task_style(tasks[name])
        for d in sample:
            got = describe(render_code(d, style))
            assert got["parsed"] and got["technique"] == d.technique
            assert {k: got[k] for k in dict(d.knobs)} == dict(d.knobs), d


def test_describe_reads_the_seed_workflows_and_survives_junk(tasks):
    seeds = tasks["synth_arith"].seed_workflows()
    want = {"cot": "cot", "cot_sc": "self_consistency", "self_refine": "self_refine", "debate": "debate",
            "dynamic_role": "dynamic_role", "code": "code"}
    for name, technique in want.items():
        got = describe(seeds[name])
        assert got["technique"] == technique and got["reasoning"] is True and got["answer_format"] == "precise"
    assert describe(seeds["cot_sc"])["samples"] == 5
    assert describe(seeds["debate"])["debaters"] == 3
    action = sample_action(random.Random(3), tasks["synth_units"])
    assert describe(action) == describe(extract_workflow(action))
    cut = extract_workflow(action)[:-40]
    assert describe(cut)["parsed"] is False and describe(cut)["technique"] in TECHNIQUES
    for junk in ("", "hello", "```python\ndef solver(:\n```", "def solver(agent, task):\n    return 1\n",
                 "x = [" * 50, "def solver(agent, task):\n    agent.call_llm(messages=m, temperature=t)\n", None, 42):
        got = describe(junk)
        assert got["technique"] in (*TECHNIQUES, "other")


def _sample_designs(rng: random.Random) -> list[Design]:
    """One random design per technique, plus a pair that differs only in the knobs the executor rewards."""
    out = [rng.choice(designs(t)) for t in TECHNIQUES]
    base = {k: v[0] for k, v in knob_space("cot").items()}
    out.append(Design.of("cot", **{**base, "role": "expert", "reasoning": True, "answer_format": "precise",
                                   "temperature": 0.0}))
    out.append(Design.of("cot", **{**base, "role": "generic", "reasoning": False, "answer_format": "loose",
                                   "temperature": 0.0}))
    return out


def test_sampled_workflows_run_in_the_sandbox_against_the_simulated_executor(tasks):
    sandbox_or_skip()
    from w4s_jax.rollout import Executor, WorkerPool, evaluate_workflow
    from w4s_jax.sim import SIM_MODEL, simulated_server

    task = tasks["synth_arith"]
    items = task.items("valid")[:40]
    chosen = _sample_designs(random.Random(11))
    style = task_style(task)

    async def run():
        with simulated_server(task) as srv:
            async with Executor(srv.base_url, model=SIM_MODEL, max_concurrency=128, max_retries=0) as ex, \
                    WorkerPool(2) as pool:
                return await asyncio.gather(*[evaluate_workflow(render_code(d, style), task, items, ex, pool=pool,
                                                                threads=40) for d in chosen])

    results = asyncio.run(run())
    for d, res in zip(chosen, results):
        assert res.infra_errors == 0 and res.workflow_errors == 0, (d, res.note, res.records[0].error)
        assert 0.1 <= res.accuracy <= 1.0, (d, res.accuracy)
        assert res.usage["calls"] >= len(items)
    # the knobs reach the executor: reasoning + precise format + expert role beat none of them, by a margin
    # well beyond the noise of 40 items (the simulator's documented effects are about +0.3 here)
    assert results[-2].accuracy - results[-1].accuracy >= 0.15

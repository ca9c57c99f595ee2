"""evaluate_workflow end to end: public-W4S-style workflows, faults, replay, bad code, budget."""
from __future__ import annotations

import itertools

import pytest

from test_rollout_support import (CODE_GEN, COT, SELF_CONSISTENCY, ArithTask, expected_accuracy, run,
                                  sandbox_or_skip, start_server)
from w4s_jax.rollout import EvalResult, Executor, WorkflowCodeError, evaluate_workflow
from w4s_jax.sim import FaultPlan, SimServer
from w4s_jax.tasks.base import Item

pytestmark = pytest.mark.timeout(180)
N = 12


def _evaluate_once(code, task, **kw):
    """One evaluation against a fresh scripted server."""
    srv = start_server()

    async def go():
        async with Executor(srv.base_url, model="sim") as ex:
            return await evaluate_workflow(code, task, task.items("valid"), ex, **kw)
    try:
        return run(go())
    finally:
        srv.stop()


async def _eval_all(base_url, workflows, **ex_kw):
    task = ArithTask(N)
    out = {}
    async with Executor(base_url, model="sim", backoff_base_s=0.01, backoff_max_s=0.1, **ex_kw) as ex:
        for name, code in workflows.items():
            out[name] = await evaluate_workflow(code, task, task.items("valid"), ex, item_timeout_s=30)
        ex.close_cache()
    return out


WORKFLOWS = {"cot": COT, "sc": SELF_CONSISTENCY, "code": CODE_GEN}


def test_w4s_style_workflows_score_what_the_script_implies():
    sandbox_or_skip()
    srv = start_server()
    try:
        res = run(_eval_all(srv.base_url, WORKFLOWS))
    finally:
        srv.stop()
    for name, r in res.items():
        assert isinstance(r, EvalResult)
        assert r.status == "ok" and r.infra_errors == 0 and r.workflow_errors == 0, (name, r.records[:2])
        assert r.accuracy == pytest.approx(expected_accuracy(name, N)), name
        assert len(r.records) == N and [x.item_id for x in r.records] == [f"q{k}" for k in range(N)]
        assert all(x.calls >= 1 and x.prompt_tokens > 0 for x in r.records)
    # self-consistency asked for 5 choices in one call per item
    assert all(x.calls == 1 and x.completion_tokens >= 5 for x in res["sc"].records)


def test_faults_do_not_change_accuracy_and_lose_no_item():
    sandbox_or_skip()
    clean = start_server()
    try:
        ref = run(_eval_all(clean.base_url, WORKFLOWS))
    finally:
        clean.stop()
    faulty = start_server(FaultPlan(rate=0.2, seed=3, hang_s=1.5, retry_after_s=0.02))
    try:
        res = run(_eval_all(faulty.base_url, WORKFLOWS, request_timeout_s=0.5, max_retries=12))
        stats = dict(faulty.stats)
    finally:
        faulty.stop()
    assert all(stats[k] > 0 for k in ("429", "500", "timeout", "truncated")), stats
    for name in WORKFLOWS:
        assert res[name].infra_errors == 0 and len(res[name].records) == N
        assert res[name].accuracy == ref[name].accuracy
        assert [r.answer for r in res[name].records] == [r.answer for r in ref[name].records]


def test_permanent_outage_is_an_infrastructure_error_not_zero():
    sandbox_or_skip()
    srv = start_server(FaultPlan(rate=1.0, kinds=("500",), retry_after_s=0.01))
    try:
        res = run(_eval_all(srv.base_url, {"cot": COT, "sc": SELF_CONSISTENCY}, max_retries=2))
    finally:
        srv.stop()
    for r in res.values():
        assert r.accuracy is None and r.status == "infrastructure error"
        assert r.infra_errors == N and r.workflow_errors == 0
        assert all(x.score is None and x.correct is None and "HTTP 500" in x.infra_error for x in r.records)


def test_outage_swallowed_by_the_workflow_is_still_infra():
    """A workflow that catches everything must not turn an outage into a scored wrong answer."""
    sandbox_or_skip()
    code = '''
def solver(agent, task):
    try:
        return agent.call_llm(messages=[{"role": "user", "content": task}])[0]
    except:
        return "0"
'''
    srv = start_server(FaultPlan(rate=1.0, kinds=("429",), retry_after_s=0.01))
    try:
        res = run(_eval_all(srv.base_url, {"c": code}, max_retries=1))["c"]
    finally:
        srv.stop()
    assert res.accuracy is None and res.infra_errors == N


def test_replay_from_cache_makes_no_http_request(tmp_path):
    sandbox_or_skip()
    cache = str(tmp_path / "cache.sqlite")
    srv = start_server()
    try:
        first = run(_eval_all(srv.base_url, WORKFLOWS, cache_path=cache))
        n_first = srv.stats["requests"]
    finally:
        srv.stop()
    assert n_first >= 3 * N
    srv2 = start_server()  # a fresh server: a replay must not touch it
    try:
        second = run(_eval_all(srv2.base_url, WORKFLOWS, cache_path=cache))
        assert srv2.stats["requests"] == 0
    finally:
        srv2.stop()
    for name in WORKFLOWS:
        a, b = first[name], second[name]
        assert a.accuracy == b.accuracy
        assert [(r.answer, r.score) for r in a.records] == [(r.answer, r.score) for r in b.records]
        assert b.usage["cost_usd"] == 0.0


def test_replay_is_exact_for_identical_questions_sampled_in_any_order(tmp_path):
    """Duplicate questions sampled at temperature 1 by concurrent threads in a random order: in the replay
    each item still gets its own samples back (they are numbered per workflow and item, not per arrival)."""
    sandbox_or_skip()
    code = '''
import random, time

def solver(agent, task):
    time.sleep(random.random() * 0.05)
    return " / ".join(agent.call_llm(messages=[{"role": "user", "content": task}], temperature=1.0, num_of_response=2))
'''
    items = [Item(id=f"dup{k}", question="Question 1: what is 1 + 3?", answer="4") for k in range(6)]
    counter = itertools.count()
    cache = str(tmp_path / "cache.sqlite")

    async def once(srv):
        async with Executor(srv.base_url, model="sim", cache_path=cache) as ex:
            r = await evaluate_workflow(code, ArithTask(1), items, ex, threads=6)
            ex.close_cache()
            return [x.answer for x in r.records]
    runs = []
    for _ in range(3):
        with SimServer(lambda body, j: f"sample {next(counter)}") as srv:
            runs.append(run(once(srv)))
            requests = srv.stats["requests"]
        assert requests == (6 if len(runs) == 1 else 0)
    assert len(set(runs[0])) == 6 and runs[1] == runs[0] and runs[2] == runs[0]


@pytest.mark.parametrize("code,needle", [
    ("def solver(agent, task):\n    return (1 +\n", "line 2: syntax error"),
    ("def solve(agent, task):\n    return 1\n", "no top-level function `solver"),
    ("", "empty"),
    ("async def solver(agent, task):\n    return 1\n", "not async"),
])
def test_bad_code_is_rejected_before_running(code, needle):
    task = ArithTask(2)

    async def go():
        async with Executor("http://127.0.0.1:9/v1", model="sim") as ex:
            return await evaluate_workflow(code, task, task.items("valid"), ex)
    with pytest.raises(WorkflowCodeError, match=needle):
        run(go())


def test_error_at_import_time_names_the_line():
    sandbox_or_skip()
    code = "import math\nx = 1 / 0\ndef solver(agent, task):\n    return 1\n"
    srv = start_server()
    try:
        with pytest.raises(WorkflowCodeError, match=r"ZeroDivisionError.*workflow line 2"):
            run(_eval_all(srv.base_url, {"c": code}))
        # solver bound to something that is not callable is found in the sandbox
        with pytest.raises(WorkflowCodeError, match="no function named `solver`"):
            run(_eval_all(srv.base_url, {"c": "solver = 3\n"}))
    finally:
        srv.stop()


def test_workflow_errors_are_scored_zero_with_their_text():
    sandbox_or_skip()
    code = '''
def solver(agent, task):
    k = int(task.split()[1].rstrip(":"))
    if k % 4 == 1:
        raise KeyError("boom")
    if k % 4 == 2:
        agent.call_llm(messages=[{"role": "user", "content": task, "name": "x"}])
    if k % 4 == 3:
        agent.call_llm(messages=[{"role": "user", "content": task}], num_of_response=1000)
    return agent.call_llm(messages=[{"role": "user", "content": task}], temperature=0)[0].split()[-1]
'''
    srv = start_server()
    try:
        r = run(_eval_all(srv.base_url, {"c": code}))["c"]
    finally:
        srv.stop()
    errs = {x.item_id: x.error for x in r.records}
    assert "KeyError: 'boom' (workflow line 5, in solver)" in errs["q1"]
    assert "unexpected keys ['name']" in errs["q2"]
    assert "num_of_response must be between 1 and 64" in errs["q3"]
    assert errs["q0"] is None and r.records[0].correct
    assert r.infra_errors == 0 and r.workflow_errors == 9 and r.accuracy == pytest.approx(3 / 12)


def test_budget_stops_new_calls_in_evaluation():
    sandbox_or_skip()
    # Three sequential calls per item, 4 items at a time; the price table makes every call cost $1.
    code = '''
def solver(agent, task):
    for _ in range(3):
        r = agent.call_llm(messages=[{"role": "user", "content": task}], temperature=1.0)
    return r[0].split()[-1]
'''
    prices = {"sim": (1e6, 1e6, 0.0)}  # $1 per prompt token
    srv = start_server()
    task = ArithTask(N)

    async def go():
        async with Executor(srv.base_url, model="sim", budget_usd=60.0, price_table=prices,
                            max_concurrency=4) as ex:
            r = await evaluate_workflow(code, task, task.items("valid"), ex, threads=4)
            return r, ex.spent_usd, ex.stats.calls
    try:
        r, spent, calls = run(go())
    finally:
        srv.stop()
    per_call = 13  # prompt tokens (words) of one request: system prompt 6 + question 7, $1 each
    assert r.accuracy is None and r.infra_errors > 0
    assert any("budget" in (x.infra_error or "") for x in r.records)
    # Never more over the cap than the calls in flight when it was reached (at most max_concurrency).
    assert 60.0 <= spent <= 60.0 + 4 * per_call
    assert spent == pytest.approx(calls * per_call)


def test_calls_from_threads_the_workflow_starts_are_charged_to_their_item():
    sandbox_or_skip()
    code = '''
import threading
from concurrent.futures import ThreadPoolExecutor

def solver(agent, task):
    ask = lambda i: agent.call_llm(messages=[{"role": "user", "content": f"{task} (variant {i})"}],
                                   temperature=0)[0]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(ask, range(3)))
    t = threading.Thread(target=ask, args=(9,))
    t.start()
    t.join()
    return answers[0].split()[-1]
'''
    srv = start_server()
    try:
        r = run(_eval_all(srv.base_url, {"c": code}))["c"]
    finally:
        srv.stop()
    assert [x.calls for x in r.records] == [4] * N and r.usage["calls"] == 4 * N
    assert r.accuracy == pytest.approx(expected_accuracy("cot", N))


def test_load_and_evaluation_timeouts():
    sandbox_or_skip()
    task = ArithTask(4)
    srv = start_server(latency_s=0.0)

    async def go(code, **kw):
        async with Executor(srv.base_url, model="sim") as ex:
            return await evaluate_workflow(code, task, task.items("valid"), ex, **kw)
    try:
        with pytest.raises(WorkflowCodeError, match="loading the workflow code took longer than 1 s"):
            run(go("while True:\n    pass\ndef solver(agent, task):\n    return 1\n", load_timeout_s=1))
        slow = '''
import time
def solver(agent, task):
    if int(task.split()[1].rstrip(":")) % 2:
        time.sleep(30)
    return agent.call_llm(messages=[{"role": "user", "content": task}], temperature=0)[0].split()[-1]
'''
        r = run(go(slow, eval_timeout_s=3))
    finally:
        srv.stop()
    assert "timed out after 3 s" in r.note and r.wall_s < 10
    assert [x.correct for x in r.records] == [True, False, True, False]
    assert all("timed out" in x.error for x in r.records[1::2]) and r.infra_errors == 0


def test_answers_of_any_type_and_size_come_back_bounded():
    sandbox_or_skip()
    code = '''
class Odd:
    def __repr__(self):
        return "Odd()"

def solver(agent, task):
    k = int(task.split()[1].rstrip(":"))
    return [lambda: 1, Odd(), {"a": [1, 2]}, "x" * 10_000_000][k % 4]
'''
    r = _evaluate_once(code, ArithTask(4))
    ans = [x.answer for x in r.records]
    assert ans[0].startswith("<function") and ans[1] == "Odd()" and ans[2] == {"a": [1, 2]}
    assert len(ans[3]) <= 100_002 and r.workflow_errors == 0 and r.note is None


def test_workflows_can_import_installed_packages_but_not_our_code():
    """The worker starts without `site` (-S) for speed: installed packages must still import in the sandbox."""
    sandbox_or_skip()
    code = '''
import json, re, collections, fractions
import numpy as np

def solver(agent, task):
    a, b = (int(x) for x in re.findall(r"(\\d+) \\+ (\\d+)", task)[0])
    try:
        import w4s_jax  # the service's own package is not inside the sandbox
        leaked = "w4s_jax importable"
    except ImportError:
        leaked = ""
    return leaked + str(int(np.array([a, b]).sum()))
'''
    r = _evaluate_once(code, ArithTask(3))
    assert r.accuracy == 1.0, [(x.answer, x.error) for x in r.records]

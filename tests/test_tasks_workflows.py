"""Seed workflows: rendered sources compile, and each one calls the agent API and combines replies as documented."""
from __future__ import annotations

import json

import pytest

from w4s_jax.rollout.agent_api import Agent
from w4s_jax.tasks.workflows import WORKFLOW_NAMES, seed_workflows

FORMAT = "Put only the final number in `answer`."


class ScriptedTransport:
    """Replies from `script(request, choice)`; records every request and executed program."""

    def __init__(self, script, execute=None):
        self.script, self._execute = script, execute
        self.requests, self.executed = [], []

    def call(self, request):
        self.requests.append(request)
        return [json.dumps(self.script(request, j)) for j in range(request["n"])]

    def execute(self, code, timeout):
        self.executed.append(code)
        return self._execute(code)


def run(name, script, execute=None, task="What is 2 + 3?", **kw):
    source = seed_workflows(FORMAT, role="math expert", code=True, **kw)[name]
    ns: dict = {}
    exec(compile(source, f"<{name}>", "exec"), ns)
    transport = ScriptedTransport(script, execute)
    return ns["solver"](Agent(transport), task), transport


def system(request):
    return request["messages"][0]["content"]


def user(request):
    return request["messages"][-1]["content"]


def test_names_and_sources_compile_without_imports_of_the_package():
    with_code = seed_workflows(FORMAT, role="math expert", code=True)
    without = seed_workflows(FORMAT, role="expert", code=False)
    assert set(without) == set(WORKFLOW_NAMES) == {"cot", "cot_sc", "self_refine", "debate", "dynamic_role"}
    assert set(with_code) == set(WORKFLOW_NAMES) | {"code"}
    for name, src in with_code.items():
        compile(src, name, "exec")
        assert src.startswith("def solver(agent, task: str):") and "w4s_jax" not in src
        assert "__" not in src.replace("__init__", "")   # every placeholder filled


def test_placeholder_like_text_in_the_format_is_inserted_verbatim():
    fmt = 'Answer "__ROLE__" or ROLE\\n, with a \' quote.'
    src = seed_workflows(fmt, role="x", code=False)["cot"]
    ns: dict = {}
    exec(src, ns)
    t = ScriptedTransport(lambda r, j: {"reasoning": "", "answer": "1"})
    ns["solver"](Agent(t), "q")
    assert fmt in system(t.requests[0])


def test_cot_one_greedy_call_with_role_format_and_task():
    out, t = run("cot", lambda r, j: {"reasoning": "2+3", "answer": 5})
    assert out == {"answer": "5"}
    (req,) = t.requests
    assert req["temperature"] == 0.0 and req["n"] == 1 and req["response_format"] == "json_object"
    assert "math expert" in system(req) and FORMAT in system(req) and '"reasoning", "answer"' in system(req)
    assert "What is 2 + 3?" in user(req) and all(m["role"] != "system" for m in req["messages"][1:])


def test_cot_sc_votes_over_normalised_answers_and_keeps_the_first_spelling():
    answers = ["7", "1,000", "1000.0", "7", " 1000. "]
    out, t = run("cot_sc", lambda r, j: {"reasoning": "", "answer": answers[j]})
    assert out == {"answer": "1,000"}
    (req,) = t.requests
    assert req["n"] == 5 and req["temperature"] == 0.8


def test_cot_sc_tie_goes_to_the_earliest_answer_and_text_answers_compare_case_blind():
    answers = ["Paris", "paris.", "Lyon", "lyon", "Nice"]
    out, _ = run("cot_sc", lambda r, j: {"reasoning": "", "answer": answers[j]})
    assert out == {"answer": "Paris"}


def test_code_runs_the_program_and_falls_back_to_reasoning_when_it_fails():
    program = "def solution():\n    return 2 + 3\n"

    def script(req, j):
        if '"reasoning", "code"' in system(req):
            return {"reasoning": "add", "code": program}
        return {"reasoning": "by hand", "answer": "5 (fallback)"}

    out, t = run("code", script, execute=lambda code: 5)
    assert out == {"answer": "5"} and t.executed == [program] and len(t.requests) == 1
    assert "solution()" in system(t.requests[0])

    def crash(code):
        raise RuntimeError("NameError: x")
    out, t = run("code", script, execute=crash)
    assert out == {"answer": "5 (fallback)"} and len(t.requests) == 2
    out, t = run("code", script, execute=lambda code: None)
    assert out == {"answer": "5 (fallback)"}


def test_self_refine_revises_until_the_reviewer_accepts():
    verdicts = iter(["False", "True"])

    def script(req, j):
        if '"feedback", "correct"' in system(req):
            return {"feedback": "recheck the sum", "correct": next(verdicts)}
        revised = "Reviewer feedback" in user(req)
        return {"reasoning": "r", "answer": "5" if revised else "6"}

    out, t = run("self_refine", script)
    assert out == {"answer": "5"}
    assert len(t.requests) == 4   # answer, review (False), revision, review (True)
    assert "recheck the sum" in user(t.requests[2]) and "Proposed answer:\n6" in user(t.requests[1])


def test_self_refine_stops_after_two_rounds():
    answers = iter(["a0", "a1", "a2", "a3"])

    def script(req, j):
        if '"feedback", "correct"' in system(req):
            return {"feedback": "wrong", "correct": "False"}
        return {"reasoning": "r", "answer": next(answers)}

    out, t = run("self_refine", script)
    assert out == {"answer": "a2"} and len(t.requests) == 5   # answer, (review, revision) x 2
    assert sum('"feedback", "correct"' in system(r) for r in t.requests) == 2


def test_debate_shows_each_debater_the_others_and_votes_on_the_last_round():
    first = ["4", "5", "6"]

    def script(req, j):
        if "Other solutions" not in user(req):
            return {"reasoning": f"thought {j}", "answer": first[j]}
        own = user(req).split("Answer: ")[1].split("\n")[0]
        return {"reasoning": "updated", "answer": "5" if own != "6" else "6"}

    out, t = run("debate", script)
    assert out == {"answer": "5"}
    assert t.requests[0]["n"] == 3 and len(t.requests) == 4
    second = [user(r) for r in t.requests[1:]]
    assert "thought 1" in second[0] and "thought 2" in second[0] and "thought 0" not in second[0].split("Other")[1]


def test_dynamic_role_routes_to_the_chosen_expert_or_the_task_role():
    def script(req, j):
        if '"reasoning", "expert"' in system(req):
            return {"reasoning": "", "expert": " Critical thinker who double-checks every step "}
        return {"reasoning": "", "answer": "5"}

    out, t = run("dynamic_role", script)
    assert out == {"answer": "5"} and len(t.requests) == 2
    assert "critical thinker who double-checks every step" in system(t.requests[1])
    assert "math expert" in user(t.requests[0])

    out, t = run("dynamic_role", lambda r, j: {"reasoning": "", "expert": "astrologer", "answer": "5"},
                 experts=["chemist", "physicist"])
    assert "helpful chemist" in system(t.requests[1])


def test_empty_format_or_role_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        seed_workflows(" ", role="x", code=False)


# ------------------------------------------------------------------------------------------ in the sandbox

def _sandbox_responder(body: dict, choice: int) -> str:
    """Right answers at temperature 0 and in a debate's second round; sampled choices 0 and 2 are off by one."""
    import re
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    system_text = body["messages"][0]["content"]
    a, b = (int(x) for x in re.search(r"Problem \d+: what is (\d+) \+ (\d+)", user).groups())
    right = body["temperature"] == 0 or "Other solutions" in user or choice not in (0, 2)
    reply = {"reasoning": "adding", "answer": str(a + b if right else a + b + 1),
             "feedback": "fine", "correct": "True", "expert": "careful step-by-step problem solver"}
    if '"code"' in system_text:
        reply = {"reasoning": "plan", "code": f"def solution():\n    return {a} + {b}\n"}
    return json.dumps(reply)


def test_every_seed_workflow_runs_unchanged_in_the_sandbox():
    import asyncio

    from w4s_jax.rollout import Executor, SandboxUnavailableError, check_sandbox, evaluate_workflow
    from w4s_jax.sim import SimServer
    from w4s_jax.tasks.base import Item, SplitTask
    from w4s_jax.tasks.gsm import score_numeric_item

    try:
        check_sandbox()
    except SandboxUnavailableError as e:  # pragma: no cover - CI installs bubblewrap
        pytest.skip(str(e))
    items = [Item(f"p{k}", f"Problem {k}: what is {k} + {10 * k}?", 11 * k) for k in range(1, 5)]
    task = SplitTask("sums", "add", {"valid": items}, score_numeric_item)
    workflows = seed_workflows(FORMAT, role="math expert", code=True)
    srv = SimServer(_sandbox_responder, max_lifetime_s=120).start()

    async def go():
        async with Executor(srv.base_url, model="sim") as ex:
            return {name: await evaluate_workflow(code, task, items, ex, item_timeout_s=30)
                    for name, code in workflows.items()}
    try:
        results = asyncio.run(asyncio.wait_for(go(), 150))
    finally:
        srv.stop()
    for name, res in results.items():
        assert res.accuracy == 1.0, (name, [r.error or r.answer for r in res.records])
    assert all(r.answer == {"answer": str(it.answer)} for r, it in zip(results["cot_sc"].records, items))

"""The `agent` API workflows see: argument names, return shapes, validation (with a fake transport)."""
from __future__ import annotations

import json

import pytest

from w4s_jax.rollout.agent_api import Agent, missing_key_marker
from w4s_jax.rollout.codeexec import _run_snippet


class FakeTransport:
    def __init__(self, replies):
        self.replies = replies
        self.requests = []
        self.executed = []

    def call(self, request):
        self.requests.append(request)
        return [self.replies[j % len(self.replies)] for j in range(request["n"])]

    def execute(self, code, timeout):
        self.executed.append((code, timeout))
        return "ran"


def test_call_llm_text_returns_strings_and_adds_a_system_prompt():
    t = FakeTransport(["a", "b"])
    out = Agent(t).call_llm(messages=[{"role": "user", "content": "hi"}], num_of_response=3,
                            agent_role="math tutor", instructions="Be brief.", temperature=0.2,
                            max_completion_tokens=50, model="gpt-4o")
    assert out == ["a", "b", "a"]
    req = t.requests[0]
    assert req["n"] == 3 and req["temperature"] == 0.2 and req["max_completion_tokens"] == 50
    assert req["model"] == "gpt-4o" and req["response_format"] == "text"
    assert req["messages"][0]["role"] == "system" and "math tutor" in req["messages"][0]["content"]
    assert "Be brief." in req["messages"][0]["content"] and req["messages"][1] == {"role": "user", "content": "hi"}


def test_call_llm_keeps_an_existing_system_prompt_and_stringifies_content():
    t = FakeTransport(["x"])
    Agent(t).call_llm(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": 42}])
    assert t.requests[0]["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "42"}]


def test_call_llm_json_parses_each_choice():
    t = FakeTransport(['{"answer": 3}', "not json", "[1, 2]"])
    out = Agent(t).call_llm(messages=[{"role": "user", "content": "q"}], response_format="json",
                            num_of_response=3)
    assert out[0] == {"answer": 3}
    assert "not valid JSON" in out[1]["error"] and out[1]["raw_reply"] == "not json"
    assert "not an object" in out[2]["error"]
    assert t.requests[0]["response_format"] == "json_object"


def test_call_json_format_llm_fills_missing_keys_and_states_them():
    t = FakeTransport(['{"reasoning": "r", "answer": "5"}', '{"reasoning": "only"}', "garbage"])
    out = Agent(t).call_json_format_llm(messages=[{"role": "user", "content": "q"}], num_of_response=3,
                                        agent_role="solver of puzzles", return_dict_keys=["reasoning", "answer"],
                                        instructions="Answer with a number.", temperature=0.5)
    assert isinstance(out, list) and len(out) == 3
    assert out[0] == {"reasoning": "r", "answer": "5"}
    assert out[1]["answer"] == missing_key_marker("answer")
    assert out[2]["reasoning"] == missing_key_marker("reasoning") and "error" in out[2]
    system = t.requests[0]["messages"][0]["content"]
    assert "solver of puzzles" in system and '"reasoning"' in system and '"answer"' in system
    assert "Answer with a number." in system and "JSON" in system
    assert len([m for m in t.requests[0]["messages"] if m["role"] == "system"]) == 1


@pytest.mark.parametrize("messages,needle", [
    ("hi", "non-empty list"),
    ([], "non-empty list"),
    (["hi"], r"messages\[0\] must be a dict"),
    ([{"role": "user"}], "needs both 'role' and 'content'"),
    ([{"role": "user", "content": "x", "name": "n"}], "unexpected keys"),
    ([{"role": "robot", "content": "x"}], "must be 'system', 'user' or 'assistant'"),
])
def test_bad_messages_are_named(messages, needle):
    with pytest.raises(ValueError, match=needle):
        Agent(FakeTransport(["x"])).call_llm(messages=messages)


def test_other_bad_arguments():
    a = Agent(FakeTransport(["x"]))
    m = [{"role": "user", "content": "q"}]
    with pytest.raises(ValueError, match="between 1 and 64"):
        a.call_llm(messages=m, num_of_response=0)
    with pytest.raises(ValueError, match="response_format"):
        a.call_llm(messages=m, response_format="xml")
    with pytest.raises(ValueError, match="tools"):
        a.call_llm(messages=m, tools=[{}])
    with pytest.raises(ValueError, match="must be numbers"):
        a.call_llm(messages=m, temperature="hot")
    with pytest.raises(ValueError, match="must be a string"):
        a.execute_code(123)


def test_execute_code_passes_code_and_clamped_timeout():
    t = FakeTransport(["x"])
    a = Agent(t)
    assert a.execute_code("print(1)") == "ran"
    a.execute_code("x", timeout=1e9)
    assert t.executed == [("print(1)", 5.0), ("x", 60.0)]


@pytest.mark.parametrize("code,value", [
    ("def solution():\n    return 6 * 7\n", 42),
    ("x = 2\ny = x ** 10\n", 1024),
    ("import math\nmath.comb(5, 2)", 10),
    ("def solution():\n    return [1, 2]\nsolution()[0] + 100", [1, 2]),  # solution() wins, as upstream
    ("a = 1\nprint(a)\n", None),
    ("if __name__ == '__main__':\n    raise SystemExit(1)\nz = 3", 3),
])
def test_snippet_value_semantics(code, value):
    assert _run_snippet(code) == value


def test_snippet_errors_propagate():
    with pytest.raises(ZeroDivisionError):
        _run_snippet("1 / 0")
    with pytest.raises(SyntaxError):
        _run_snippet("def (")
    assert json.dumps(_run_snippet("{'a': [1, 2]}")) == '{"a": [1, 2]}'

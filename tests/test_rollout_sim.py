"""The simulated executor: scripts, the stand-alone server process, request validation."""
from __future__ import annotations

import json

import openai
import pytest

from w4s_jax.sim import FaultPlan, Responder, SimServer, load_script
from w4s_jax.sim.process import SimProcess

pytestmark = pytest.mark.timeout(60)


def _body(text, json_mode=False, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    body = {"messages": msgs}
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def test_script_rules_in_order_with_choices_json_and_groups(tmp_path):
    script = {"rules": [
        {"contains": "capital of France", "replies": ["Paris", "Lyon"]},
        {"regex": r"(\d+) \+ (\d+)", "replies": [r"sum of \1 and \2"], "expand": True},
        {"json": True, "replies": ['{"answer": "42"}']},
        {"system_contains": "pirate", "replies": ["arr"]},
    ], "default": "no idea"}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(script))
    r = load_script(p)
    assert [r(_body("What is the capital of France?"), j) for j in range(3)] == ["Paris", "Lyon", "Paris"]
    assert r(_body("3 + 4 = ?"), 0) == "sum of 3 and 4"
    assert r(_body("anything", json_mode=True), 0) == '{"answer": "42"}'
    assert r(_body("hello", system="You are a pirate"), 0) == "arr"
    assert r(_body("hello"), 0) == "no idea"


@pytest.mark.parametrize("script,needle", [
    ({"rules": [{"replies": []}]}, "non-empty list"),
    ({"rules": [{"replies": ["x"], "colour": 1}]}, "unknown fields"),
    ({"rules": [{"regex": "(", "replies": ["x"]}]}, "regex"),
    ({"rules": "x"}, "'rules' list"),
])
def test_bad_scripts_are_named(tmp_path, script, needle):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(script))
    with pytest.raises(ValueError, match=needle) as ei:
        load_script(p)
    assert "bad.json" in str(ei.value)


def test_no_matching_rule_is_a_loud_400():
    with SimServer(Responder([{"contains": "zzz", "replies": ["x"]}])) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="no rule matches"):
            client.chat.completions.create(model="sim", messages=[{"role": "user", "content": "hi"}])
        client.close()


def test_fault_plan_validation():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(rate=0.1, kinds=("503",))
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=2.0)


def test_server_in_its_own_process_serves_and_stops_with_its_parent():
    srv = SimProcess(0.0, reply="from another process")
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        r = client.chat.completions.create(model="sim", n=2, messages=[{"role": "user", "content": "a b c"}])
        assert [c.message.content for c in r.choices] == ["from another process"] * 2
        assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 6
        client.close()
    finally:
        srv.close()  # closes its stdin: the server exits by itself
    assert srv.proc.returncode == 0

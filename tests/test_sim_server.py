"""The simulated strong model over HTTP: the command line, the official openai client, real-server errors
(checked with the SDK's own exception types and surfaced by our Executor), determinism across restarts."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import openai
import pytest

from w4s_jax.rollout import Executor, InfraError, RequestRejectedError
from w4s_jax.sim import SIM_MODEL, simulated_server
from w4s_jax.sim.process import SimProcess
from w4s_jax.tasks import get

pytestmark = pytest.mark.timeout(120)

SYSTEM = ('You are a helpful math word problem solver.\nAnswer with a single JSON object whose keys are exactly: '
          '"reasoning", "answer".\nThink step by step. Give the answer as digits only.')


@pytest.fixture(scope="module")
def server():
    with simulated_server("synth_arith", max_lifetime_s=300) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    c = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    yield c
    c.close()


def _messages(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def test_official_client_gets_answers_usage_and_the_model_list(client):
    item = get("synth_arith").items("test")[0]
    r = client.chat.completions.create(model=SIM_MODEL, messages=_messages(item.question), n=3, temperature=0.0,
                                       response_format={"type": "json_object"})
    answers = [json.loads(c.message.content)["answer"] for c in r.choices]
    assert len(answers) == 3 and len(set(answers)) == 1
    assert r.usage.completion_tokens > 3 * len(answers) and r.usage.prompt_tokens > 20
    assert [m.id for m in client.models.list().data] == [SIM_MODEL]


@pytest.mark.parametrize("kwargs,status,code,param", [
    (dict(model="gpt-5-ultra"), 404, "model_not_found", None),
    (dict(messages=[{"role": "user"}]), 400, "missing_required_parameter", "messages[0].content"),
    (dict(messages=[{"role": "wizard", "content": "hi"}]), 400, "invalid_value", "messages[0].role"),
    (dict(messages=[]), 400, "empty_array", "messages"),
    (dict(messages=[{"role": "user", "content": 42}]), 400, "invalid_type", "messages[0].content"),
    (dict(n=129), 400, "integer_above_max_value", "n"),
    (dict(n=0), 400, "integer_below_min_value", "n"),
    (dict(temperature=2.5), 400, "decimal_above_max_value", "temperature"),
    (dict(max_completion_tokens=100_000), 400, "invalid_value", "max_completion_tokens"),
    (dict(response_format={"type": "json_object"}, messages=[{"role": "user", "content": "hello"}]), 400, None,
     "messages"),
])
def test_bad_requests_get_the_errors_of_the_real_api(client, kwargs, status, code, param):
    args = {"model": SIM_MODEL, "messages": [{"role": "user", "content": "hello"}], **kwargs}
    exc = openai.NotFoundError if status == 404 else openai.BadRequestError
    with pytest.raises(exc) as ei:
        client.chat.completions.create(**args)
    err = ei.value.body
    assert ei.value.status_code == status and err["type"] == "invalid_request_error"
    assert err["code"] == code and err["param"] == param and err["message"]


def test_unknown_argument_and_unparsable_body(server):
    import urllib.request
    for data, needle in ((b'{"model": "sim-strong", "messages": [], "bogus": 1}', "Unrecognized request argument"),
                         (b'{"model": ', "could not parse the JSON body")):
        req = urllib.request.Request(server.base_url + "/chat/completions", data=data,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=10)
        assert ei.value.code == 400 and needle in json.loads(ei.value.read())["error"]["message"]


def test_executor_surfaces_the_errors_as_such(server):
    async def go():
        async with Executor(server.base_url, model="gpt-5-ultra", max_retries=2) as ex:
            with pytest.raises(InfraError, match="HTTP 404.*does not exist") as ei:
                await ex.chat([{"role": "user", "content": "hi"}])
            assert ei.value.kind == "config"
        async with Executor(server.base_url, model=SIM_MODEL, max_retries=2) as ex:
            with pytest.raises(RequestRejectedError, match=r"HTTP 400.*Invalid 'n'.*<= 128"):
                await ex.chat([{"role": "user", "content": "hi"}], n=200)
            with pytest.raises(RequestRejectedError, match="must contain the word 'json'"):
                await ex.chat([{"role": "user", "content": "hi"}], response_format="json_object")
            assert ex.stats.http_requests == 2 and ex.stats.retries == 0   # refused at once, not retried
    asyncio.run(go())


def test_command_line_server_is_deterministic_across_restarts():
    items = get("synth_arith").items("valid")[:6]
    bodies = [dict(model=SIM_MODEL, messages=_messages(it.question), temperature=t, n=n,
                   response_format={"type": "json_object"})
              for it in items for t, n in ((0.0, 1), (0.9, 3), (0.9, 3))]   # a sampled request, repeated

    def replies():
        with SimProcess(args=["--simulate=synth_arith", "--seed=5", "--latency_s=0.01"]) as srv:
            c = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
            out = [[ch.message.content for ch in c.chat.completions.create(**b).choices] for b in bodies]
            c.close()
        assert srv.proc.returncode == 0      # stopped by itself when its stdin closed
        return out

    first, second = replies(), replies()
    assert first == second
    assert first[1] != first[2]              # the repeat is the next samples, not the same ones


def test_command_line_refuses_an_unknown_task():
    out = subprocess.run([sys.executable, "-m", "w4s_jax.sim", "--simulate=no_such_task"], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 2 and "no_such_task" in out.stderr and "registered tasks" in out.stderr

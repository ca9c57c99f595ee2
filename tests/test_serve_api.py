"""The chat-completions API through the official `openai` client, against transformers on one tiny checkpoint:
greedy replies, seeded samples, log-probs, stop strings and budgets, and the errors a client can act on."""
import json
import urllib.error
import urllib.request

import numpy as np
import openai
import pytest

from serve_support import (CONVS, NEW, SAMPLED, choice_token_ids, hf_greedy, hf_token_logprobs, make_checkpoint,
                           prompt_ids, tokenizer)
from w4s_jax.serve import PolicyServer


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_chat")
    hf = make_checkpoint(path)
    with PolicyServer(str(path), served_model_name="tiny-chat") as srv:
        yield hf, srv, openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)


def _ask(client, conv, **kw):
    return client.chat.completions.create(model="tiny-chat", messages=conv, **kw)


def test_greedy_replies_equal_transformers_generate(served):
    hf, srv, client = served
    tok = tokenizer()
    reasons = set()
    for conv in CONVS[:3]:
        r = _ask(client, conv, temperature=0, max_tokens=NEW, logprobs=True)
        want, reason = hf_greedy(hf, prompt_ids(conv), NEW)
        choice = r.choices[0]
        assert choice_token_ids(choice) == want  # token for token
        assert choice.message.content == tok.decode(want, skip_special_tokens=True)
        assert choice.finish_reason == reason
        assert r.usage.prompt_tokens == len(prompt_ids(conv)) and r.usage.completion_tokens == len(want)
        assert r.model == "tiny-chat" and r.object == "chat.completion"
        reasons.add(reason)
    # Both ways a reply ends are covered by these prompts (the checkpoint's seed was chosen for it).
    assert reasons == {"stop", "length"}


def test_seeded_samples_differ_reproduce_and_carry_transformers_logprobs(served):
    hf, srv, client = served
    conv = CONVS[1]
    a = _ask(client, conv, seed=11, max_tokens=NEW, logprobs=True, **SAMPLED)
    b = _ask(client, conv, seed=11, max_tokens=NEW, logprobs=True, **SAMPLED)
    c = _ask(client, conv, seed=12, max_tokens=NEW, logprobs=True, **SAMPLED)
    texts = [ch.message.content for ch in a.choices]
    assert [ch.index for ch in a.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert texts == [ch.message.content for ch in b.choices]
    assert texts != [ch.message.content for ch in c.choices]
    assert a.model_extra["seed"] == 11
    prompt = prompt_ids(conv)
    for ch in a.choices + c.choices:
        ids = choice_token_ids(ch)
        got = np.array([item.logprob for item in ch.logprobs.content])
        np.testing.assert_allclose(got, hf_token_logprobs(hf, prompt, ids), atol=1e-4)
    # Unseeded requests draw a seed of their own: reported, and it reproduces the reply.
    d = _ask(client, conv, max_tokens=NEW, **SAMPLED)
    e = _ask(client, conv, seed=d.model_extra["seed"], max_tokens=NEW, **SAMPLED)
    assert [ch.message.content for ch in d.choices] == [ch.message.content for ch in e.choices]
    assert d.choices[0].logprobs is None


def test_stop_strings_and_max_tokens_set_the_finish_reason(served):
    hf, srv, client = served
    tok = tokenizer()
    conv = CONVS[2]
    want, reason = hf_greedy(hf, prompt_ids(conv), NEW)
    assert reason == "length" and len(want) == NEW
    full = tok.decode(want, skip_special_tokens=True)
    # A stop string taken from the middle of the greedy reply ends it there.
    stop = full[len(full) // 2:len(full) // 2 + 3]
    cut = full.index(stop)
    r = _ask(client, conv, temperature=0, max_tokens=NEW, stop=["never-there", stop], logprobs=True)
    ch = r.choices[0]
    assert ch.finish_reason == "stop" and ch.message.content == full[:cut]
    kept = choice_token_ids(ch)
    assert kept == want[:len(kept)] and len(tok.decode(kept)) <= cut < len(tok.decode(want[:len(kept) + 1]))
    assert len(kept) < r.usage.completion_tokens <= NEW
    # A stop string that never appears, and a smaller budget: "length", with exactly that many tokens.
    r = _ask(client, conv, temperature=0, max_completion_tokens=5, stop="never-there", logprobs=True)
    assert r.choices[0].finish_reason == "length" and choice_token_ids(r.choices[0]) == want[:5]
    assert r.usage.completion_tokens == 5


def test_models_endpoint(served):
    _, srv, client = served
    assert [m.id for m in client.models.list().data] == ["tiny-chat"]


@pytest.mark.parametrize("extra,param,message", [
    (dict(extra_body={"top_k": 5}), "top_k", "unknown parameter 'top_k'"),
    (dict(n=0), "n", "n must be in [1, 128]"),
    (dict(temperature=3.0), "temperature", "temperature must be a number in [0, 2]"),
    (dict(top_p=0.0), "top_p", "top_p must be a number in (0, 1]"),
    (dict(max_tokens=0), "max_tokens", "max_tokens must be in [1, inf]"),
    (dict(max_tokens=600), "max_tokens", "that exceeds the model's context of 512 tokens"),
    (dict(max_tokens=None, max_completion_tokens=600), "max_completion_tokens", "with max_completion_tokens=600"),
    (dict(max_completion_tokens=5), "max_completion_tokens", "max_tokens (24) and max_completion_tokens (5) disagree"),
    (dict(seed="abc"), "seed", "seed must be a 64-bit integer"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop", "stop must be a non-empty string or a list of at most 4"),
    (dict(logprobs=True, top_logprobs=2), "top_logprobs", "top_logprobs=2 is not supported"),
    (dict(frequency_penalty=0.5), "frequency_penalty", "frequency_penalty=0.5 is not supported"),
])
def test_bad_requests_get_400_naming_the_field(served, extra, param, message):
    _, srv, client = served
    calls = srv.stats["sampler_calls"]
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, CONVS[0], **({"max_tokens": NEW} | extra))
    assert err.value.status_code == 400 and err.value.param == param
    assert message in err.value.body["message"], err.value.body
    assert srv.stats["sampler_calls"] == calls


@pytest.mark.parametrize("body,param,message", [
    (b"{not json", None, "not valid JSON"),
    (json.dumps({"model": "m"}).encode(), "messages", "messages must be a non-empty list"),
    (json.dumps({"messages": [{"role": "robot", "content": "hi"}]}).encode(), "messages[0].role", "must be one of"),
    (json.dumps({"messages": [{"role": "user", "content": "word " * 600}]}).encode(), "messages",
     "the model's context is 512"),
])
def test_malformed_bodies_and_overlong_prompts(served, body, param, message):
    _, srv, _ = served
    req = urllib.request.Request(srv.base_url + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400
    got = json.loads(err.value.read())["error"]
    assert got["param"] == param and message in got["message"] and got["type"] == "invalid_request_error"

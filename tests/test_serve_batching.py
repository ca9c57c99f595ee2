"""Dynamic batching: requests sent together share sampler calls, and every reply, greedy or seeded, equals the
reply to the same request sent alone; a steady mix of requests compiles nothing new."""
import asyncio

import jax
import openai
import pytest

from serve_support import CONVS, NEW, SAMPLED, make_checkpoint
from w4s_jax.sampling import compile_counts
from w4s_jax.serve import PolicyServer

# 16 requests: greedy and seeded alternate, over prompts of different lengths.
REQUESTS = [dict(messages=CONVS[i % 4], max_tokens=NEW - 3 * (i % 3),
                 **(dict(temperature=0) if i % 2 == 0 else dict(SAMPLED, seed=100 + i))) for i in range(16)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_batch")
    make_checkpoint(path)
    # A generous gathering window: the 16 requests of a burst reliably land in one call.
    with PolicyServer(str(path), batch_wait_ms=200) as srv:
        yield srv


def _texts(reply):
    return [(c.message.content, c.finish_reason) for c in reply.choices]


async def _burst(base_url, requests):
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        replies = await asyncio.gather(*(client.chat.completions.create(model="m", **r) for r in requests))
    return [_texts(r) for r in replies]


def test_concurrent_requests_share_calls_and_equal_one_by_one(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    calls0 = server.stats["sampler_calls"]
    alone = [_texts(client.chat.completions.create(model="m", **r)) for r in REQUESTS]
    assert server.stats["sampler_calls"] - calls0 == 16
    assert sum(len(a) for a in alone) == 8 + 8 * SAMPLED["n"]

    calls1 = server.stats["sampler_calls"]
    together = asyncio.run(_burst(server.base_url, REQUESTS))
    calls = server.stats["sampler_calls"] - calls1
    assert calls < 16, server.stats["batch_requests"]
    assert together == alone
    # The same burst again: the same calls, nothing compiled, the same replies.
    before = compile_counts()
    assert asyncio.run(_burst(server.base_url, REQUESTS)) == alone
    assert compile_counts() == before
    assert server.stats["sampler_calls"] - calls1 - calls <= calls


@pytest.mark.slow
def test_a_mesh_serves_the_same_replies(server):
    """Weights split over `tensor`, rows over `data` (the sampling rules): the same replies as one device."""
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    want = [_texts(client.chat.completions.create(model="m", **r)) for r in REQUESTS[:2]]
    with PolicyServer(server.model_path, mesh="data=2,tensor=2") as sharded:
        q = sharded.engine.policy.model.layers.q_proj.get_value()
        assert q.sharding.spec == jax.sharding.PartitionSpec(None, None, "tensor", None)
        client = openai.OpenAI(base_url=sharded.base_url, api_key="unused", max_retries=0)
        assert [_texts(client.chat.completions.create(model="m", **r)) for r in REQUESTS[:2]] == want

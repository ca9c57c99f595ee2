"""Sampler behaviour on the tiny preset: seeds, n samples, shared prefill, stop ids, buckets and compile
counts, option errors, and sampling on a mesh."""
import re

import jax
import numpy as np
import pytest

from w4s_jax.models import Qwen2, get_preset, init_model, make_mesh, shard_model
from w4s_jax.sampling import SamplingError, compile_counts, generate, sample, shard_for_sampling
from w4s_jax.sampling.buckets import length_bucket, pow2_bucket

PROMPTS = [[5, 9, 200, 31, 7], [44] * 9, [3, 1, 4, 1, 5, 9, 2, 6]]
# Most tests share these settings (and so one pair of compiled programs; compiling dominates test time).
SAMPLED = dict(max_new_tokens=24, temperature=1.0, top_p=0.95, n=5)


@pytest.fixture(scope="module")
def model():
    return init_model(get_preset("tiny"), seed=0)


def test_seed_reproduces_and_n_samples_differ(model):
    a = generate(model, PROMPTS, seed=1, **SAMPLED)
    assert a == generate(model, PROMPTS, seed=1, **SAMPLED)
    assert a != generate(model, PROMPTS, seed=2, **SAMPLED)
    for per_prompt in a:
        assert len(per_prompt) == 5 and all(len(s) == 24 for s in per_prompt)
        assert len({tuple(s) for s in per_prompt}) == 5  # the n samples differ
    assert len({tuple(a[i][0]) for i in range(3)}) == 3


def test_prefill_runs_once_per_prompt_not_per_sample(model, monkeypatch):
    shapes = []
    original = Qwen2.hidden_states

    def spy(self, input_ids, *args, **kwargs):
        shapes.append(tuple(input_ids.shape))  # recorded while tracing: the shapes each program runs
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(Qwen2, "hidden_states", spy)
    # Programs compiled by earlier tests in this process (any module) would not be traced again.
    jax.clear_caches()
    res = sample(model, [list(range(1, 51))], max_new_tokens=8, temperature=1.0, top_p=0.95, n=5, seed=0)
    assert shapes == [(1, 64), (5, 1)], shapes  # prefill: 1 row of 64 slots; decode: 5 rows, 1 token
    assert res.stats["prefill_rows"] == 1 and res.stats["decode_rows"] == 5
    assert len({tuple(s) for s in res.tokens[0]}) == 5


def test_stop_ids_end_each_row_and_nothing_follows(model):
    stops = list(range(0, 512, 9))  # about one token in nine ends a sample
    res = sample(model, PROMPTS, seed=3, stop_ids=stops, **SAMPLED)
    lengths = [len(s) for per in res.tokens for s in per]
    assert min(lengths) < 24 and len(set(lengths)) > 2  # rows stop at different steps
    for per, reasons, lps in zip(res.tokens, res.finish_reasons, res.logprobs):
        for toks, reason, lp in zip(per, reasons, lps):
            assert not set(toks) & set(stops)
            assert reason == ("length" if len(toks) == 24 else "stop")
            assert len(lp) == len(toks) and all(v <= 0 for v in lp)
    # Reproducible, and every row's prefix equals the same sample drawn without stop ids up to its stop.
    free = sample(model, PROMPTS, seed=3, **SAMPLED)
    for per, per_free in zip(res.tokens, free.tokens):
        for toks, full in zip(per, per_free):
            cut = next((i for i, t in enumerate(full) if t in stops), 24)
            assert toks == full[:cut]


def test_same_buckets_do_not_recompile(model):
    generate(model, [[1, 2, 3], [4] * 20, [5]], max_new_tokens=10, temperature=0.9, top_k=20, top_p=0.9, n=5)
    before = compile_counts()
    # Other prompt lengths (same 32-slot bucket), prompt count (same bucket of 4), budget (same 32 bucket),
    # seed, temperature, top_p and top_k (same 32 candidate bucket): the same programs.
    out = generate(model, [[7] * 30, [8, 9], [1], [2]], max_new_tokens=17, temperature=0.5, top_k=30,
                   top_p=0.8, n=5, seed=5)
    assert compile_counts() == before
    assert [len(s) for per in out for s in per] == [17] * 20
    # A longer prompt moves to the next bucket: one new prefill and one new decode program.
    generate(model, [[7] * 40, [8, 9]], max_new_tokens=17, temperature=0.5, top_k=30, top_p=0.8, n=5, seed=5)
    after = compile_counts()
    assert after["prefill"] == before["prefill"] + 1 and after["decode"] == before["decode"] + 1


@pytest.mark.parametrize("kwargs,message", [
    (dict(temperature=-0.5), "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
    (dict(top_p=0.0), "top_p must be in (0, 1]"),
    (dict(top_p=1.5), "top_p must be in (0, 1]"),
    (dict(top_k=-1), "top_k must be an integer >= 0"),
    (dict(n=0), "n (samples per prompt) must be an integer >= 1"),
    (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1"),
    (dict(stop_ids=[512]), "stop id 512 is not a token id"),
    (dict(seed=2**40), "seed must be an integer in [0, 2**32)"),
    (dict(max_new_tokens=2040), "prompt 1 has 9 tokens; with max_new_tokens=2040 that exceeds the model's "
                                "context of 2048 tokens (at most 8 prompt tokens)"),
])
def test_bad_options_fail_up_front_with_one_clear_error(model, kwargs, message):
    kw = dict(max_new_tokens=4) | kwargs
    before = compile_counts()
    with pytest.raises(SamplingError, match=re.escape(message)):
        generate(model, [[1, 2], [3] * 9], **kw)
    assert compile_counts() == before


@pytest.mark.parametrize("prompts,message", [
    ([], "prompt_ids must be a non-empty list"),
    ([[1, 2], []], "prompt 1 is empty"),
    ([[1, 600]], "prompt 0 holds 600, not a token id"),
    (["hello"], "prompt 0 must be a list of token ids"),
])
def test_bad_prompts(model, prompts, message):
    with pytest.raises(SamplingError, match=re.escape(message)):
        generate(model, prompts, max_new_tokens=4)


def test_sampling_on_a_mesh_equals_one_device(model):
    # Equal samples need equal logits at every step: the sharded forward, cache and filters all agree.
    want = generate(model, PROMPTS, seed=1, **SAMPLED)
    assert len(jax.devices()) == 8
    sharded = shard_model(model, make_mesh(data=2, fsdp=2, tensor=2))
    assert sharded.layers.q_proj.get_value().sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
    assert generate(sharded, PROMPTS, seed=1, **SAMPLED) == want
    # Sampling-time placement: weights split over tensor only, batch rows over data.
    for_sampling = shard_for_sampling(model, make_mesh(data=4, fsdp=1, tensor=2))
    spec = for_sampling.layers.q_proj.get_value().sharding.spec
    assert spec == jax.sharding.PartitionSpec(None, None, "tensor", None)
    assert generate(for_sampling, PROMPTS, seed=1, **SAMPLED) == want


def test_budget_and_top_k_edge_cases_reuse_the_same_program(model):
    want = generate(model, PROMPTS, seed=1, **SAMPLED)
    before = compile_counts()
    # top_k >= vocabulary is no filter at all; a 1-token budget yields each sample's first token.
    assert generate(model, PROMPTS, seed=1, top_k=512, **SAMPLED) == want
    one = generate(model, PROMPTS, seed=1, **(SAMPLED | dict(max_new_tokens=1)))
    assert one == [[s[:1] for s in per] for per in want]
    assert compile_counts() == before


def test_buckets():
    assert [length_bucket(n) for n in (1, 32, 33, 48, 49, 64, 65, 1000, 1024, 1025, 4096, 4100)] == \
        [32, 32, 48, 48, 64, 64, 96, 1024, 1024, 1536, 4096, 6144]
    assert [pow2_bucket(n) for n in (1, 2, 3, 5, 64)] == [1, 2, 4, 8, 64]
    assert pow2_bucket(3, 64) == 64

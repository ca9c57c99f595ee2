"""KV-cache sampling: prefill each prompt once, share its cache across its n samples, decode in one compiled
`lax.while_loop` that ends when every row has stopped or used its budget.

Layout of one call. Prompts are left-padded to a bucketed length P (pads masked out, positions counted from
each prompt's first real token), so every row's first new token lands in cache slot P; the cache holds
S = P + N slots, N the bucketed token budget. The prefill runs on the B prompts (B bucketed to a power of
two; extra prompts are inactive dummies) and its cache is repeated along the batch to B * n rows
(row = prompt * n + sample). The decode then feeds one token per row per step.

Stop ids are excluded from the returned tokens: a sample ends just before its first stop id, and its finish
reason is "stop"; a sample that used all max_new_tokens without one ends with "length". Rows that stopped
keep riding along in the batch (shapes are static) but record nothing more.

Randomness: sample j of prompt i draws its uniforms from fold_in(fold_in(key(seed), i * n + j), step), so
a seed reproduces a call, and the random stream of a sample does not depend on how many prompts share the batch.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import numbers
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from w4s_jax.models.sharding import constrain
from w4s_jax.sampling import filters
from w4s_jax.sampling.buckets import length_bucket, pow2_bucket
from w4s_jax.sampling.options import SamplingOptions, check_prompts

_CACHE_AXES = ("layers", "batch", "cache_length", "act_kv_heads", None)
_PAD_ID = 0

# Traces of the compiled programs; a trace happens exactly when jit compiles a new program.
_COMPILES: collections.Counter = collections.Counter()


def compile_counts() -> dict[str, int]:
    """How many programs the sampler has compiled so far in this process, by phase ("prefill", "decode")."""
    return dict(_COMPILES)


@dataclasses.dataclass
class SampleResult:
    """Per prompt, per sample: new token ids (stop id excluded), their log-probabilities under the model's
    unfiltered distribution (temperature 1), and the finish reason ("stop" or "length")."""

    tokens: list[list[list[int]]]
    logprobs: list[list[list[float]]]
    finish_reasons: list[list[str]]
    stats: dict


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("n", "cache_len"))
def _prefill(graphdef, state, ids, mask, *, n: int, cache_len: int):
    _COMPILES["prefill"] += 1
    model = nnx.merge(graphdef, state)
    B, P = ids.shape
    positions = jnp.where(mask, jnp.cumsum(mask, axis=1) - 1, 0).astype(jnp.int32)
    cache = model.init_cache(B, P)
    hidden, cache = model.hidden_states(ids, mask, positions=positions, cache=cache, cache_index=0)
    logits = model.logits(hidden[:, -1])  # left padding: the last slot is every prompt's last token

    def widen(x):  # [L, B, P, K, E] -> [L, B * n, S, K, E]: room for the new tokens, one copy per sample
        x = jnp.pad(x, ((0, 0), (0, 0), (0, cache_len - P), (0, 0), (0, 0)))
        return constrain(jnp.repeat(x, n, axis=1), _CACHE_AXES, model.sharding)

    return {k: widen(v) for k, v in cache.items()}, jnp.repeat(logits, n, axis=0)


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("greedy", "k_cap", "use_top_p", "out_len"),
                   donate_argnames=("cache",))
def _decode(graphdef, state, cache, logits0, prompt_slots, prompt_lens, active, row_ids, stop_ids, start,
            max_new, key, temperature, top_k, top_p, *, greedy: bool, k_cap: int, use_top_p: bool,
            out_len: int):
    _COMPILES["decode"] += 1
    model = nnx.merge(graphdef, state)
    R, S = prompt_slots.shape
    slots = jnp.arange(S, dtype=jnp.int32)
    row_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, row_ids)

    def pick(logits, t):
        u = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, t)))(row_keys)
        return filters.choose(logits, u, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                              k_cap=k_cap, use_top_p=use_top_p)

    def record(t, tok, logp, out, lps, done, count, stopped):
        is_stop = jnp.any(tok[:, None] == stop_ids[None, :], axis=-1)
        emit = ~done & ~is_stop
        out = jax.lax.dynamic_update_slice(out, jnp.where(emit, tok, -1)[:, None], (0, t))
        lps = jax.lax.dynamic_update_slice(lps, jnp.where(emit, logp, 0.0)[:, None], (0, t))
        stopped = stopped | (~done & is_stop)
        done = done | is_stop | (t + 1 >= max_new)
        return out, lps, done, count + emit.astype(jnp.int32), stopped

    out = jnp.full((R, out_len), -1, jnp.int32)
    lps = jnp.zeros((R, out_len), jnp.float32)
    zeros = jnp.zeros((R,), jnp.int32)
    tok, logp = pick(logits0, 0)
    out, lps, done, count, stopped = record(0, tok, logp, out, lps, ~active, zeros, jnp.zeros((R,), bool))

    def cond(c):
        t, _, _, _, _, done, _, _ = c
        return (t < max_new) & ~jnp.all(done)

    def body(c):
        t, tok, cache, out, lps, done, count, stopped = c
        slot = start + t - 1  # where the previous token goes
        mask = prompt_slots | ((slots >= start) & (slots <= slot))[None, :]
        hidden, cache = model.hidden_states(tok[:, None], mask, positions=(prompt_lens + t - 1)[:, None],
                                            cache=cache, cache_index=slot)
        tok, logp = pick(model.logits(hidden[:, 0]), t)
        out, lps, done, count, stopped = record(t, tok, logp, out, lps, done, count, stopped)
        return t + 1, tok, cache, out, lps, done, count, stopped

    carry = (jnp.int32(1), tok, cache, out, lps, done, count, stopped)
    t, _, cache, out, lps, _, count, stopped = jax.lax.while_loop(cond, body, carry)
    return out, lps, count, stopped, t, cache


def _k_cap(opts: SamplingOptions, vocab: int) -> int:
    if opts.greedy or opts.top_k == 0 or opts.top_k >= vocab:
        return 0
    return min(vocab, pow2_bucket(opts.top_k, 16))


def sample(model, prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float = 0.0,
           top_p: float = 1.0, top_k: int = 0, n: int = 1, seed: int = 0,
           stop_ids: Sequence[int] = ()) -> SampleResult:
    """Sample n continuations of each prompt; see `generate` for the options. Also returns log-probs, finish
    reasons and timings (prefill_s, decode_s, steps)."""
    cfg = model.config
    V = cfg.vocab_size
    if isinstance(stop_ids, numbers.Integral):
        stop_ids = (stop_ids,)
    opts = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                           n=n, seed=seed, stop_ids=tuple(stop_ids)).validate(V)
    prompts = check_prompts(prompt_ids, vocab_size=V, context=cfg.max_position_embeddings,
                            max_new_tokens=max_new_tokens)
    B = len(prompts)
    Bb, P, N = pow2_bucket(B), length_bucket(max(map(len, prompts))), length_bucket(max_new_tokens)
    R = Bb * n

    ids = np.full((Bb, P), _PAD_ID, np.int32)
    mask = np.zeros((Bb, P), bool)
    lens = np.ones((Bb,), np.int32)
    for i, p in enumerate(prompts):
        ids[i, P - len(p):] = p
        mask[i, P - len(p):] = True
        lens[i] = len(p)
    mask[B:, -1] = True  # dummy prompts: one pad token, so no row attends to nothing
    prompt_slots = np.zeros((R, P + N), bool)
    prompt_slots[:, :P] = np.repeat(mask, n, axis=0)
    stops = np.full((pow2_bucket(len(opts.stop_ids), 64),), -1, np.int32)  # a roomy bucket: one program
    stops[:len(opts.stop_ids)] = opts.stop_ids

    graphdef, state = nnx.split(model)
    t0 = time.perf_counter()
    cache, logits0 = _prefill(graphdef, state, ids, mask, n=n, cache_len=P + N)
    jax.block_until_ready(logits0)
    t1 = time.perf_counter()
    k_cap = _k_cap(opts, V)
    out, lps, count, stopped, steps, _ = _decode(
        graphdef, state, cache, logits0, prompt_slots, np.repeat(lens, n), np.arange(R) < B * n,
        np.arange(R, dtype=np.int32), stops, np.int32(P), np.int32(max_new_tokens), jax.random.key(seed),
        np.float32(max(opts.temperature, 1e-6)), np.int32(max(opts.top_k, 1)), np.float32(opts.top_p),
        greedy=opts.greedy, k_cap=k_cap, use_top_p=not opts.greedy and opts.top_p < 1.0, out_len=N)
    out, lps, count, stopped, steps = jax.device_get((out, lps, count, stopped, steps))
    t2 = time.perf_counter()

    tokens, logprobs, reasons = [], [], []
    for i in range(B):
        rows = range(i * n, (i + 1) * n)
        tokens.append([out[r, :count[r]].tolist() for r in rows])
        logprobs.append([lps[r, :count[r]].tolist() for r in rows])
        reasons.append(["stop" if stopped[r] else "length" for r in rows])
    stats = dict(prefill_s=t1 - t0, decode_s=t2 - t1, steps=int(steps), prefill_rows=Bb, decode_rows=R,
                 prompt_bucket=P, new_token_bucket=N)
    return SampleResult(tokens, logprobs, reasons, stats)


def generate(model, prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, top_k: int = 0, n: int = 1, seed: int = 0,
             stop_ids: Sequence[int] = ()) -> list[list[list[int]]]:
    """New token ids, [prompt][sample] -> list[int], for a ragged batch of prompts (lists of token ids).

    temperature 0 is greedy (top_k/top_p ignored); otherwise tokens are drawn from softmax(logits /
    temperature) restricted by top_k (0 = off) then top_p (1 = off), see `filters`. Each sample ends before
    its first token in `stop_ids` (the stop id is not returned) or after max_new_tokens tokens. Calls whose
    prompt count, longest prompt and max_new_tokens fall in the same buckets reuse the compiled programs
    (`compile_counts()`); the seed, temperature, top_p and top_k (within its power-of-two bucket) are
    runtime values. Switching between greedy and sampling, or turning top-k or top-p on or off, selects
    another program (compiled once).
    """
    return sample(model, prompt_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                  top_k=top_k, n=n, seed=seed, stop_ids=stop_ids).tokens

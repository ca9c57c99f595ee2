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

`sample_requests` batches independent requests (a server's): each has its own prompt, n, seed, temperature,
top_p and budget; sample j of a request draws from fold_in(fold_in(key(request seed), j), step), so its
random stream does not depend on the other requests in the call. Rows are laid out request after request
(the prompt count and row count bucketed by `rows_bucket`), each row gathering its prompt's prefill cache.
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

from w4s_jax.models.qwen2 import CACHE_AXES
from w4s_jax.models.sharding import constrain
from w4s_jax.sampling import filters
from w4s_jax.sampling.buckets import length_bucket, pow2_bucket, rows_bucket
from w4s_jax.sampling.options import SamplingError, SamplingOptions, check_prompts

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


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("cache_len",))
def _prefill(graphdef, state, ids, mask, row_prompt, *, cache_len: int):
    _COMPILES["prefill"] += 1
    model = nnx.merge(graphdef, state)
    B, P = ids.shape
    positions = jnp.where(mask, jnp.cumsum(mask, axis=1) - 1, 0).astype(jnp.int32)
    cache = model.init_cache(B, P)
    hidden, cache = model.hidden_states(ids, mask, positions=positions, cache=cache, cache_index=0)
    logits = model.logits(hidden[:, -1])  # left padding: the last slot is every prompt's last token

    def widen(x):  # [B, K, P, E] -> [R, K, S, E]: room for the new tokens, one copy per row of its prompt
        x = jnp.pad(x, ((0, 0), (0, 0), (0, cache_len - P), (0, 0)))
        return constrain(jnp.take(x, row_prompt, axis=0), CACHE_AXES, model.sharding)

    return jax.tree.map(widen, cache), jnp.take(logits, row_prompt, axis=0)


def _row_chunk(rows: int, sharded: bool, unfiltered: bool = False) -> int:
    """Rows per pass of the next-token choice on a CPU (0 = all at once). A filtered choice makes several
    passes over a [rows, vocab] array; a few rows at a time stay in cache (80 rows of a 152k vocabulary are
    48 MB), which on a CPU takes several times less than streaming the whole array through memory at each
    pass. An unfiltered draw makes two passes, fastest over all rows at once (both cores work on it), as
    do accelerators (and sharded rows)."""
    if unfiltered or sharded or jax.default_backend() != "cpu" or rows <= 8:
        return 0
    divisors = [c for c in range(2, 9) if rows % c == 0]
    return min(divisors, key=lambda c: (abs(c - _CHOICE_ROWS), c), default=0)


_CHOICE_ROWS = 4  # measured best on a 2-core box for a 152k vocabulary (2.4 MB per pass)


@functools.partial(jax.jit, static_argnums=(0,),
                   static_argnames=("greedy", "mixed", "k_cap", "use_top_p", "out_len", "row_chunk"),
                   donate_argnames=("cache",))
def _decode(graphdef, state, cache, logits0, prompt_slots, prompt_lens, active, seeds, row_ids, stop_ids, start,
            max_new, temperature, top_k, top_p, greedy_rows, *, greedy: bool, mixed: bool, k_cap: int,
            use_top_p: bool, out_len: int, row_chunk: int):
    _COMPILES["decode"] += 1
    model = nnx.merge(graphdef, state)
    R, S = prompt_slots.shape
    slots = jnp.arange(S, dtype=jnp.int32)
    row_keys = jax.vmap(lambda s, r: jax.random.fold_in(jax.random.key(s), r))(seeds, row_ids)

    def choose(logits, u, temp, k, p, g):
        return filters.choose(logits, u, greedy=greedy, temperature=temp[:, None], top_k=k, top_p=p, k_cap=k_cap,
                              use_top_p=use_top_p, greedy_rows=g if mixed else None)

    def pick(logits, t):
        u = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, t)))(row_keys)
        args = (logits, u, temperature, top_k, top_p, greedy_rows)
        if not row_chunk:
            return choose(*args)
        split = lambda x: x.reshape(R // row_chunk, row_chunk, *x.shape[1:])
        tok, logp = jax.lax.map(lambda a: choose(*a), tuple(split(a) for a in args))
        return tok.reshape(R), logp.reshape(R)

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
        return (t < out_len) & ~jnp.all(done)

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


@dataclasses.dataclass(frozen=True)
class Rows:
    """The decode rows of one call, host-side: which prompt each row continues, its random stream
    (seed, row id) and its sampling settings. Rows past the real ones are inactive padding."""

    prompt: np.ndarray       # int32 [R]
    active: np.ndarray       # bool [R]
    seed: np.ndarray         # uint32 [R]
    row_id: np.ndarray       # int32 [R]
    max_new: np.ndarray      # int32 [R]
    temperature: np.ndarray  # float32 [R]; 0 = greedy
    top_p: np.ndarray        # float32 [R]


def _run(model, prompts: list[list[int]], n_prompts: int, rows: Rows, *, stop_ids: Sequence[int], top_k: int = 0):
    """One prefill + decode over `prompts` (padded with dummies to `n_prompts`) for `rows`. Returns per row:
    tokens (stop id excluded), log-probs and finish reason, plus the call's stats."""
    V = model.config.vocab_size
    B, Bb, R = len(prompts), n_prompts, len(rows.prompt)
    P, N = length_bucket(max(map(len, prompts))), length_bucket(int(rows.max_new.max()))
    ids = np.full((Bb, P), _PAD_ID, np.int32)
    mask = np.zeros((Bb, P), bool)
    lens = np.ones((Bb,), np.int32)
    for i, p in enumerate(prompts):
        ids[i, P - len(p):] = p
        mask[i, P - len(p):] = True
        lens[i] = len(p)
    mask[B:, -1] = True  # dummy prompts: one pad token, so no row attends to nothing
    prompt_slots = np.zeros((R, P + N), bool)
    prompt_slots[:, :P] = mask[rows.prompt]
    stops = np.full((pow2_bucket(len(stop_ids), 64),), -1, np.int32)  # a roomy bucket: one program
    stops[:len(stop_ids)] = stop_ids

    greedy_rows = rows.temperature == 0.0
    live = rows.active & ~greedy_rows
    greedy = not live.any()
    mixed = not greedy and bool((rows.active & greedy_rows).any())
    use_top_p = bool((rows.top_p[live] < 1.0).any())
    k_cap = 0 if greedy or top_k == 0 or top_k >= V else min(V, pow2_bucket(top_k, 16))

    graphdef, state = nnx.split(model)
    t0 = time.perf_counter()
    cache, logits0 = _prefill(graphdef, state, ids, mask, rows.prompt, cache_len=P + N)
    jax.block_until_ready(logits0)
    t1 = time.perf_counter()
    out, lps, count, stopped, steps, _ = _decode(
        graphdef, state, cache, logits0, prompt_slots, lens[rows.prompt], rows.active, rows.seed, rows.row_id,
        stops, np.int32(P), rows.max_new, np.where(greedy_rows, 1.0, rows.temperature).astype(np.float32),
        np.full((R,), max(top_k, 1), np.int32), rows.top_p, greedy_rows,
        greedy=greedy, mixed=mixed, k_cap=k_cap, use_top_p=use_top_p, out_len=N,
        row_chunk=_row_chunk(R, model.sharding is not None, filters.unfiltered(greedy, k_cap, use_top_p)))
    out, lps, count, stopped, steps = jax.device_get((out, lps, count, stopped, steps))
    t2 = time.perf_counter()
    tokens = [out[r, :count[r]].tolist() for r in range(R)]
    logprobs = [lps[r, :count[r]].tolist() for r in range(R)]
    reasons = ["stop" if stopped[r] else "length" for r in range(R)]
    stats = dict(prefill_s=t1 - t0, decode_s=t2 - t1, steps=int(steps), prefill_rows=Bb, decode_rows=R,
                 prompt_bucket=P, new_token_bucket=N)
    return tokens, logprobs, reasons, stats


def _group(tokens, logprobs, reasons, stats, counts: Sequence[int]) -> SampleResult:
    """Per-row results -> [prompt][sample], prompt i owning the next counts[i] rows."""
    out = SampleResult([], [], [], stats)
    r = 0
    for n in counts:
        out.tokens.append(tokens[r:r + n])
        out.logprobs.append(logprobs[r:r + n])
        out.finish_reasons.append(reasons[r:r + n])
        r += n
    return out


def sample(model, prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float = 0.0,
           top_p: float = 1.0, top_k: int = 0, n: int = 1, seed: int = 0,
           stop_ids: Sequence[int] = ()) -> SampleResult:
    """Sample n continuations of each prompt; see `generate` for the options. Also returns log-probs, finish
    reasons and timings (prefill_s, decode_s, steps)."""
    cfg = model.config
    if isinstance(stop_ids, numbers.Integral):
        stop_ids = (stop_ids,)
    opts = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                           n=n, seed=seed, stop_ids=tuple(stop_ids)).validate(cfg.vocab_size)
    prompts = check_prompts(prompt_ids, vocab_size=cfg.vocab_size, context=cfg.max_position_embeddings,
                            max_new_tokens=max_new_tokens)
    B = len(prompts)
    Bb = pow2_bucket(B)
    R = Bb * n
    rows = Rows(prompt=np.repeat(np.arange(Bb, dtype=np.int32), n), active=np.arange(R) < B * n,
                seed=np.full((R,), seed, np.uint32), row_id=np.arange(R, dtype=np.int32),
                max_new=np.full((R,), max_new_tokens, np.int32),
                temperature=np.full((R,), opts.temperature, np.float32), top_p=np.full((R,), opts.top_p, np.float32))
    res = _run(model, prompts, Bb, rows, stop_ids=opts.stop_ids, top_k=opts.top_k)
    return _group(*res, [n] * B)


@dataclasses.dataclass(frozen=True)
class SampleRequest:
    """One independent request of `sample_requests`: n samples of one prompt with its own settings."""

    prompt_ids: Sequence[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int = 0


def check_request(req: SampleRequest, *, vocab_size: int, context: int) -> list[int]:
    """Validate one request's options and prompt (SamplingError naming the problem); its prompt ids."""
    SamplingOptions(max_new_tokens=req.max_new_tokens, temperature=req.temperature, top_p=req.top_p,
                    n=req.n, seed=req.seed).validate(vocab_size)
    return check_prompts([req.prompt_ids], vocab_size=vocab_size, context=context,
                         max_new_tokens=req.max_new_tokens)[0]


def sample_requests(model, requests: Sequence[SampleRequest], *, stop_ids: Sequence[int] = ()) -> SampleResult:
    """Serve independent requests in one call: result [request][sample]. Each request's samples depend only
    on the request (its seed, settings and prompt), not on which other requests share the call; greedy and
    sampled requests mix freely. The prompt and row counts are bucketed by `rows_bucket`, so a steady mix
    of requests reuses its programs."""
    cfg = model.config
    if not requests:
        raise SamplingError("sample_requests needs at least one request")
    stop_ids = SamplingOptions(max_new_tokens=1, stop_ids=tuple(stop_ids)).validate(cfg.vocab_size).stop_ids
    prompts = [check_request(r, vocab_size=cfg.vocab_size, context=cfg.max_position_embeddings)
               for r in requests]
    counts = [r.n for r in requests]
    real = sum(counts)
    R = rows_bucket(real)
    pad = R - real

    def per_row(values, dtype, fill):
        return np.asarray([v for v, n in zip(values, counts) for _ in range(n)] + [fill] * pad, dtype)

    rows = Rows(prompt=per_row(range(len(requests)), np.int32, 0), active=np.arange(R) < real,
                seed=per_row([r.seed for r in requests], np.uint32, 0),
                row_id=np.asarray([j for n in counts for j in range(n)] + [0] * pad, np.int32),
                max_new=per_row([r.max_new_tokens for r in requests], np.int32, 1),
                temperature=per_row([float(r.temperature) for r in requests], np.float32, 0.0),
                top_p=per_row([float(r.top_p) for r in requests], np.float32, 1.0))
    res = _run(model, prompts, rows_bucket(len(requests)), rows, stop_ids=stop_ids)
    return _group(*res, counts)


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

"""Next-token distributions: temperature, top-k and top-p (nucleus) filters, and one exact draw per row.

Definitions (what the tests check against a sort-based numpy reference):
- temperature T > 0: p = softmax(logits / T);
- top-k (k > 0): keep the tokens whose probability is >= the k-th largest (ties with it are kept, as
  transformers' TopKLogitsWarper does);
- top-p (0 < top_p < 1), applied after top-k on the renormalised kept mass Z: keep the tokens whose
  probability is >= tau, tau the largest value with sum(p_j >= tau) >= top_p * Z. This is "the smallest set
  of most likely tokens reaching top_p", with ties at the boundary kept together.

Why not a sort: XLA's CPU sort of a 152k vocabulary takes hundreds of ms per step, more than the model. The
filters instead use `lax.top_k` on a small candidate set (cheap), and top-p falls back to an exact bisection
over the float bit patterns (probabilities are >= 0, so their int32 bits order like the floats) only when
the nucleus is larger than the candidate set. The draw is inverse-CDF with one uniform per row (a Gumbel or
`jax.random.categorical` draw needs one random number per vocabulary entry, also slow on CPU).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# Candidates examined for the top-p threshold before the exact full-vocabulary fallback.
TOP_P_CANDIDATES = 256
# Block size of the two-level inverse-CDF draw (cumsums stay short and cheap).
_DRAW_BLOCK = 512
_BITS_INF = 0x7F800000  # int32 bits of +inf: an upper bound for the bits of any probability


def softmax_t(logits: Array, temperature: Array) -> Array:
    """float32 softmax(logits / temperature) over the last axis; temperature > 0."""
    x = logits.astype(jnp.float32)
    x = (x - jnp.max(x, axis=-1, keepdims=True)) / temperature
    e = jnp.exp(x)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _bits(p: Array) -> Array:
    return jax.lax.bitcast_convert_type(p, jnp.int32)


def _bisect_threshold(p: Array, keep_if) -> Array:
    """Per row, the largest int32 bit pattern tau with keep_if(mass/count of {p >= tau}) true, by bisection.

    `keep_if(bits_ge_tau)` gets a bool [R, V] mask of p >= tau and returns a bool [R] that must be monotone
    (true for small tau). 31 passes, each one O(V)."""
    bits = _bits(p)
    lo = jnp.zeros(p.shape[:-1], jnp.int32)  # keep_if(0) holds: everything >= 0 is kept
    hi = jnp.full(p.shape[:-1], _BITS_INF, jnp.int32)

    def body(_, c):
        lo, hi = c
        mid = lo + (hi - lo + 1) // 2
        ok = keep_if(bits >= mid[..., None])
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    lo, _ = jax.lax.fori_loop(0, 31, body, (lo, hi))
    return lo


def keep_mask(probs: Array, *, top_k: Array, top_p: Array, k_cap: int, use_top_p: bool) -> Array:
    """bool [R, V]: the tokens the filters keep. `k_cap` (static) is 0 for no top-k, else a bound >= every
    top_k value (the candidate count for `lax.top_k`); `top_k` [R] or scalar may vary below it without a
    recompile. `use_top_p` (static) switches the top-p filter on; `top_p` may vary."""
    R = probs.shape[:-1]
    keep = jnp.ones(probs.shape, bool)
    cand_vals = None
    if k_cap:
        cand_vals, _ = jax.lax.top_k(probs, k_cap)  # sorted descending
        kth = jnp.take_along_axis(cand_vals, jnp.broadcast_to(jnp.asarray(top_k) - 1, R)[..., None], axis=-1)
        keep = probs >= kth
        cand_vals = jnp.where(cand_vals >= kth, cand_vals, 0.0)
    if not use_top_p:
        return keep
    kept = jnp.where(keep, probs, 0.0)
    z = jnp.sum(kept, axis=-1)
    target = jnp.broadcast_to(jnp.asarray(top_p, jnp.float32), R) * z
    if cand_vals is None:
        cand_vals, _ = jax.lax.top_k(probs, min(TOP_P_CANDIDATES, probs.shape[-1]))
    # Fast path: the first candidate where the running mass reaches the target gives tau exactly.
    csum = jnp.cumsum(cand_vals, axis=-1)
    reached = csum >= target[..., None]
    first = jnp.argmax(reached, axis=-1)
    tau_fast = jnp.take_along_axis(cand_vals, first[..., None], axis=-1)[..., 0]
    # Not reached only for a nucleus larger than the candidates (or top-k ties spilling past k_cap). Rows
    # with top_p >= 1 (off, in a batch where other rows use it) keep everything and need no threshold.
    off = jnp.broadcast_to(jnp.asarray(top_p, jnp.float32), R) >= 1.0
    covered = jnp.any(reached, axis=-1) | off

    def exact(_):
        bits_tau = _bisect_threshold(kept, lambda ge: jnp.sum(jnp.where(ge, kept, 0.0), axis=-1) >= target)
        return jnp.where(covered, _bits(tau_fast), bits_tau)

    tau_bits = jax.lax.cond(jnp.all(covered), lambda _: _bits(tau_fast), exact, None)
    return keep & ((_bits(kept) >= tau_bits[..., None]) | off[..., None])


def filtered_probs(logits: Array, *, temperature, top_k=0, top_p=1.0, k_cap: int | None = None) -> Array:
    """The distribution a draw samples from: float32 [R, V], zero outside the kept set, summing to 1."""
    k_cap = (int(top_k) if top_k else 0) if k_cap is None else k_cap
    p = softmax_t(logits, jnp.asarray(temperature, jnp.float32))
    keep = keep_mask(p, top_k=jnp.asarray(top_k, jnp.int32), top_p=jnp.asarray(top_p, jnp.float32),
                     k_cap=k_cap, use_top_p=float(top_p) < 1.0)
    q = jnp.where(keep, p, 0.0)
    return q / jnp.sum(q, axis=-1, keepdims=True)


def _last_positive(mass: Array) -> Array:
    n = mass.shape[-1]
    return n - 1 - jnp.argmax(jnp.flip(mass > 0, axis=-1), axis=-1)


def _draw_blocks(block_mass: Array, u: Array, inner_of, block: int) -> Array:
    """The two-level inverse-CDF draw: a block by its mass, then an index inside it. `block_mass` [R, nb] >= 0,
    `inner_of(b)` the [R, block] weights of block b[r] of each row."""
    block_cum = jnp.cumsum(block_mass, axis=-1)
    x = u * block_cum[:, -1]
    b = jnp.minimum(jnp.sum(block_cum <= x[:, None], axis=-1), _last_positive(block_mass))
    before = jnp.where(b > 0, jnp.take_along_axis(block_cum, jnp.maximum(b - 1, 0)[:, None], axis=-1)[:, 0], 0.0)
    inner = inner_of(b)
    inner_cum = jnp.cumsum(inner, axis=-1)
    i = jnp.minimum(jnp.sum(inner_cum <= (x - before)[:, None], axis=-1), _last_positive(inner))
    return b * block + i


def draw(weights: Array, u: Array) -> Array:
    """Index per row drawn with probability weights / sum(weights) (weights >= 0, some > 0), given one
    uniform u in [0, 1) per row: the first index whose cumulative weight exceeds u * total. Two levels
    (block sums, then within the chosen block) keep every cumsum short; a zero-weight index is never
    returned, even when rounding pushes u * total onto the total."""
    R, V = weights.shape
    nb = -(-V // _DRAW_BLOCK)
    w = jnp.pad(weights.astype(jnp.float32), ((0, 0), (0, nb * _DRAW_BLOCK - V))).reshape(R, nb, _DRAW_BLOCK)
    return _draw_blocks(jnp.sum(w, axis=-1), u, lambda b: jnp.take_along_axis(w, b[:, None, None], axis=1)[:, 0],
                        _DRAW_BLOCK)


def _tempered_block(V: int) -> int:
    # A block that divides the vocabulary needs no padded copy of the logits (Qwen's 151936 = 1187 * 128).
    return next((b for b in (512, 256, 128) if V % b == 0), _DRAW_BLOCK)


def draw_tempered(logits: Array, u: Array, temperature) -> tuple[Array, Array]:
    """The draw from softmax(logits / temperature) with nothing filtered out, and log Z of softmax(logits)
    (temperature 1), per row, in two passes over the vocabulary when every temperature is 1 (three
    otherwise): the row maximum, then exp summed per block; only the chosen block is exponentiated again.
    The same distribution as `draw(softmax_t(...))` without its five passes over the [R, V] array.
    `temperature`: a scalar or [R, 1]."""
    R, V = logits.shape
    block = _tempered_block(V)
    nb = -(-V // block)
    t = jnp.broadcast_to(jnp.asarray(temperature, jnp.float32), (R, 1))
    m = jnp.max(logits, axis=-1, keepdims=True)
    x = logits if nb * block == V else jnp.pad(logits, ((0, 0), (0, nb * block - V)), constant_values=-jnp.inf)
    x = x.reshape(R, nb, block)
    block_mass = jnp.sum(jnp.exp((x - m[:, :, None]) / t[:, :, None]), axis=-1)
    tok = _draw_blocks(block_mass, u, lambda b: jnp.exp((jnp.take_along_axis(x, b[:, None, None], axis=1)[:, 0] - m)
                                                        / t), block)
    logz = jax.lax.cond(jnp.all(t == 1.0), lambda: jnp.log(jnp.sum(block_mass, axis=-1)),
                        lambda: jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1))) + m[:, 0]
    return tok, logz


def unfiltered(greedy: bool, k_cap: int, use_top_p: bool) -> bool:
    """Whether `choose` samples without a top-k/top-p filter (the `draw_tempered` path), from its static flags."""
    return not greedy and k_cap == 0 and not use_top_p


def choose(logits: Array, u: Array, *, greedy: bool, temperature, top_k, top_p, k_cap: int,
           use_top_p: bool, greedy_rows: Array | None = None) -> tuple[Array, Array]:
    """Next token per row and its log-probability under the unfiltered model distribution (temperature 1,
    what a trainer computes as log pi(a|s)). `greedy` (static): argmax, first index on ties, for every row;
    otherwise `greedy_rows` (bool [R], optional) picks the argmax for some rows of a sampling batch.
    `temperature` is a scalar or [R, 1]."""
    logits = logits.astype(jnp.float32)
    logz = None
    if greedy:
        tok = jnp.argmax(logits, axis=-1)
    elif unfiltered(greedy, k_cap, use_top_p):
        tok, logz = draw_tempered(logits, u, temperature)
    else:
        p = softmax_t(logits, temperature)
        keep = keep_mask(p, top_k=top_k, top_p=top_p, k_cap=k_cap, use_top_p=use_top_p)
        tok = draw(jnp.where(keep, p, 0.0), u)
    if greedy_rows is not None and not greedy:
        tok = jnp.where(greedy_rows, jnp.argmax(logits, axis=-1), tok)
    tok = tok.astype(jnp.int32)
    if logz is None:
        logz = jax.nn.logsumexp(logits, axis=-1)
    logp = jnp.take_along_axis(logits, tok[:, None], axis=-1)[:, 0] - logz
    return tok, logp

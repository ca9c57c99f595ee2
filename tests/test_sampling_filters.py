"""The filtered next-token distributions (temperature, top-k, top-p) against a sort-based numpy reference,
and the inverse-CDF draw against exact stratified frequencies."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from w4s_jax.sampling import filters
from w4s_jax.sampling.filters import draw, filtered_probs


def ref_filtered(logits, temperature, top_k=0, top_p=1.0):
    """Sort-based reference: softmax(l/T); keep p >= k-th largest; then, on the renormalised kept mass, the
    smallest prefix (descending) reaching top_p, extended to every token tied with its last one."""
    x = np.asarray(logits, np.float64) / temperature
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = np.zeros_like(p)
    for r in range(p.shape[0]):
        keep = np.ones(p.shape[1], bool)
        if top_k:
            keep &= p[r] >= np.sort(p[r])[::-1][top_k - 1]
        q = np.where(keep, p[r], 0.0)
        if top_p < 1.0:
            desc = np.sort(q)[::-1]
            cut = np.searchsorted(np.cumsum(desc), top_p * q.sum())
            keep &= q >= desc[min(cut, len(desc) - 1)]
        q = np.where(keep, p[r], 0.0)
        out[r] = q / q.sum()
    return out


def _logits(rows, vocab, scale, seed):
    return np.array(jax.random.normal(jax.random.key(seed), (rows, vocab)) * scale, np.float32)


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 10, 1.0), (1.3, 1, 1.0), (1.0, 0, 0.9), (0.5, 0, 0.5),
    (1.0, 40, 0.8), (2.0, 100, 0.95), (1.0, 5, 0.3)])
def test_filtered_distribution_matches_reference(temperature, top_k, top_p):
    logits = _logits(4, 1000, 3.0, seed=top_k + int(100 * top_p))
    got = np.asarray(filtered_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p))
    want = ref_filtered(logits, temperature, top_k, top_p)
    np.testing.assert_array_equal(got > 0, want > 0)  # exactly the same support
    np.testing.assert_allclose(got, want, atol=2e-6)
    if top_k and top_p == 1.0:
        assert ((got > 0).sum(-1) == top_k).all()  # no ties in continuous logits
    if top_p < 1.0:  # the kept set reaches top_p, and dropping its least likely token would not
        p = ref_filtered(logits, temperature)
        kept = np.where(got > 0, p, 0.0)
        mass = kept.sum(-1)
        z = np.where(ref_filtered(logits, temperature, top_k) > 0, p, 0).sum(-1)
        assert (mass >= top_p * z - 1e-6).all()
        assert (mass - np.where(got > 0, p, np.inf).min(-1) < top_p * z).all()


def test_top_p_nucleus_larger_than_candidates_uses_exact_fallback():
    # Near-flat rows: the 0.9 nucleus holds far more than TOP_P_CANDIDATES tokens; one peaked row does not.
    vocab = 3000
    logits = _logits(3, vocab, 0.3, seed=1)
    logits[1] = _logits(1, vocab, 8.0, seed=2)[0]
    got = np.asarray(filtered_probs(logits, temperature=1.0, top_p=0.9))
    want = ref_filtered(logits, 1.0, 0, 0.9)
    assert (want[0] > 0).sum() > filters.TOP_P_CANDIDATES
    assert (want[1] > 0).sum() < filters.TOP_P_CANDIDATES
    np.testing.assert_array_equal(got > 0, want > 0)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_ties_at_the_boundary_are_kept_together():
    logits = np.log(np.array([[0.4, 0.2, 0.2, 0.1, 0.1]], np.float32))
    for k, want_support in ((1, [1, 0, 0, 0, 0]), (2, [1, 1, 1, 0, 0]), (4, [1, 1, 1, 1, 1])):
        got = np.asarray(filtered_probs(logits, temperature=1.0, top_k=k))
        np.testing.assert_array_equal(got[0] > 0, np.array(want_support, bool))
    # top_p 0.5: 0.4 alone is short of it, 0.4 + one 0.2 reaches it, and the other 0.2 ties: both kept.
    got = np.asarray(filtered_probs(logits, temperature=1.0, top_p=0.5))
    np.testing.assert_allclose(got[0], [0.5, 0.25, 0.25, 0, 0], atol=1e-6)
    # top-k ties spilling past the candidate set force the exact top-p path, which still gets them right.
    got = np.asarray(filtered_probs(logits, temperature=1.0, top_k=2, top_p=0.99, k_cap=2))
    np.testing.assert_allclose(got[0], [0.5, 0.25, 0.25, 0, 0], atol=1e-6)


def test_draw_frequencies_are_exact_under_stratified_uniforms():
    # Weights with zeros, one tiny entry and a vocabulary that is not a multiple of the block size.
    rng = np.random.default_rng(0)
    V, M = 1300, 20000
    w = rng.random(V).astype(np.float32) * (rng.random(V) < 0.3)
    w[17] = 1e-3
    p = w / w.sum()
    u = (np.arange(M) + 0.5) / M
    idx = np.asarray(jax.jit(draw)(jnp.broadcast_to(jnp.asarray(w), (M, V)), jnp.asarray(u, jnp.float32)))
    counts = np.bincount(idx, minlength=V)
    assert counts[w == 0].sum() == 0
    np.testing.assert_allclose(counts, p * M, atol=2.0)


def test_draw_never_returns_a_zero_weight_index_at_the_top_of_the_range():
    w = np.zeros((3, 1100), np.float32)
    w[:, 5] = 1.0
    w[1, 600] = 3.0
    w[2, 1099] = 2.0
    u = np.full((3,), np.nextafter(np.float32(1), np.float32(0)))
    np.testing.assert_array_equal(np.asarray(draw(jnp.asarray(w), jnp.asarray(u))), [5, 600, 1099])


def test_choose_samples_the_filtered_distribution():
    logits = _logits(1, 50, 2.0, seed=3)
    M = 8000
    u = jnp.asarray((np.arange(M) + 0.5) / M, jnp.float32)
    batch = jnp.broadcast_to(jnp.asarray(logits), (M, 50))
    tok, logp = jax.jit(lambda l, u: filters.choose(l, u, greedy=False, temperature=0.8, top_k=jnp.int32(12),
                                                    top_p=jnp.float32(0.7), k_cap=16, use_top_p=True))(batch, u)
    want = ref_filtered(logits, 0.8, 12, 0.7)[0]
    counts = np.bincount(np.asarray(tok), minlength=50)
    np.testing.assert_allclose(counts / M, want, atol=3 / M)
    # The returned log-prob is the unfiltered model log-prob of the chosen token (temperature 1).
    full = jax.nn.log_softmax(jnp.asarray(logits[0]))
    np.testing.assert_allclose(np.asarray(logp), np.asarray(full)[np.asarray(tok)], atol=1e-5)
    greedy, _ = filters.choose(jnp.asarray(logits), u[:1], greedy=True, temperature=1.0, top_k=1, top_p=1.0,
                               k_cap=0, use_top_p=False)
    assert int(greedy[0]) == int(np.argmax(logits[0]))


@pytest.mark.parametrize("V,temperature", [(1300, 1.0), (1300, 0.7), (1024, 1.0), (384, 1.6)])
def test_unfiltered_draw_matches_the_tempered_softmax_exactly(V, temperature):
    # The two-pass draw (no filter): frequencies under stratified uniforms are the tempered softmax, and log Z
    # is that of the temperature-1 softmax; V=1300 exercises the padded block, 1024 and 384 the unpadded ones.
    rng = np.random.default_rng(V)
    logits = (rng.normal(size=V) * 3).astype(np.float32)
    logits[:7] = -np.inf if V == 384 else logits[:7]      # masked entries are never drawn
    M = 20000
    u = jnp.asarray((np.arange(M) + 0.5) / M, jnp.float32)
    batch = jnp.broadcast_to(jnp.asarray(logits), (M, V))
    tok, logz = jax.jit(lambda l, u: filters.draw_tempered(l, u, temperature))(batch, u)
    x = logits.astype(np.float64) / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    counts = np.bincount(np.asarray(tok), minlength=V)
    assert counts[p == 0].sum() == 0
    np.testing.assert_allclose(counts, p * M, atol=2.0)
    finite = logits[np.isfinite(logits)].astype(np.float64)
    want_logz = finite.max() + np.log(np.exp(finite - finite.max()).sum())
    np.testing.assert_allclose(np.asarray(logz), want_logz, rtol=1e-5)


def test_choose_without_filters_returns_model_logprobs_and_honours_greedy_rows():
    logits = _logits(4, 640, 2.0, seed=5)
    u = jnp.asarray([0.1, 0.5, 0.9, 0.99], jnp.float32)
    greedy_rows = jnp.asarray([False, True, False, True])
    temperature = jnp.asarray([[0.7], [1.0], [1.3], [1.0]], jnp.float32)
    tok, logp = filters.choose(jnp.asarray(logits), u, greedy=False, temperature=temperature, top_k=0, top_p=1.0,
                               k_cap=0, use_top_p=False, greedy_rows=greedy_rows)
    tok = np.asarray(tok)
    assert tok[1] == np.argmax(logits[1]) and tok[3] == np.argmax(logits[3])
    full = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), axis=-1))
    np.testing.assert_allclose(np.asarray(logp), full[np.arange(4), tok], atol=1e-5)
    # Rows that sample draw what the general (filtering) path draws from the same uniforms.
    p = np.asarray(filters.softmax_t(jnp.asarray(logits), temperature))
    want = np.asarray(filters.draw(jnp.asarray(p), u))
    assert tok[0] == want[0] and tok[2] == want[2]

"""Target-token log-probs (no [B, T, V] logits) equal log_softmax of the full logits, values and grads."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from w4s_jax.models import get_preset, hidden_target_logprobs, init_model, target_logprobs


@pytest.mark.parametrize("max_tokens,chunk", [(None, 7), (20, 8), (20, 1024)])
def test_target_logprobs_equal_full_log_softmax(max_tokens, chunk):
    model = init_model(get_preset("tiny"), seed=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 512, size=(3, 12))
    targets = np.roll(ids, -1, axis=1)
    mask = np.zeros_like(ids, dtype=bool)
    mask[0, 4:11] = True
    mask[1, 2:6] = True
    mask[2, 7:11] = True  # 15 loss tokens <= max_tokens
    full = jax.nn.log_softmax(model(ids), axis=-1)
    want = np.where(mask, np.take_along_axis(np.asarray(full), targets[..., None], -1)[..., 0], 0.0)
    got = target_logprobs(model, ids, targets, mask, max_tokens=max_tokens, chunk_size=chunk)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=1e-5)


def test_target_logprobs_gradient_matches_full_logits():
    model = init_model(get_preset("tiny"), seed=4)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 512, size=(2, 10))
    targets = np.roll(ids, -1, axis=1)
    mask = rng.random((2, 10)) < 0.4
    weights = jnp.asarray([1.7, 0.3])

    def loss_chunked(m):
        lp = target_logprobs(m, ids, targets, mask, max_tokens=12, chunk_size=4)
        return -(weights[:, None] * lp).sum()

    def loss_full(m):
        lp = jnp.take_along_axis(jax.nn.log_softmax(m(ids), -1), targets[..., None], -1)[..., 0]
        return -(weights[:, None] * jnp.where(mask, lp, 0.0)).sum()

    g1 = nnx.grad(loss_chunked)(model)
    g2 = nnx.grad(loss_full)(model)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)


def test_positions_beyond_max_tokens_are_zero_not_wrong():
    h = jax.random.normal(jax.random.key(0), (1, 6, 8))
    w = jax.random.normal(jax.random.key(1), (8, 11))
    t = jnp.arange(6)[None] % 11
    lp = hidden_target_logprobs(h, w, t, jnp.ones((1, 6), bool), max_tokens=4, chunk_size=2)
    full = jax.nn.log_softmax(h @ w, -1)[0, jnp.arange(6), t[0]]
    np.testing.assert_allclose(np.asarray(lp[0, :4]), np.asarray(full[:4]), atol=1e-5)
    assert np.all(np.asarray(lp[0, 4:]) == 0)

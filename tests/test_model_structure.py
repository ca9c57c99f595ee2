"""Structure guarantees: scan keeps the program size independent of depth; remat policies change memory,
not results; parameters carry logical axes; presets match the published shapes."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from w4s_jax.models import PRESETS, REMAT_POLICIES, get_preset, init_model


def _hlo_size(num_layers: int) -> int:
    cfg = dataclasses.replace(get_preset("tiny"), num_layers=num_layers)
    model = init_model(cfg)
    graphdef, state = nnx.split(model)
    ids = jnp.zeros((2, 8), jnp.int32)
    fwd = jax.jit(lambda s, i: nnx.merge(graphdef, s)(i))
    return len(fwd.lower(state, ids).as_text())


def test_program_size_does_not_grow_with_depth():
    small, deep = _hlo_size(2), _hlo_size(12)
    assert deep < small * 1.05, (small, deep)


def test_remat_policies_give_identical_gradients():
    ids = np.random.default_rng(0).integers(0, 512, size=(2, 10))
    grads = {}
    for policy in REMAT_POLICIES:
        model = init_model(get_preset("tiny"), seed=0, remat=policy)
        loss = lambda m: jnp.mean(jax.nn.log_softmax(m(ids))[..., 0])
        grads[policy] = jax.tree.leaves(nnx.grad(loss)(model))
    for policy, g in grads.items():
        for a, b in zip(g, grads["none"]):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, err_msg=policy)


def test_every_parameter_has_logical_axes_of_its_rank():
    model = init_model(get_preset("tiny"))
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        assert len(var.logical_axes) == var.get_value().ndim, path


def test_bf16_compute_returns_fp32_logits():
    model = init_model(get_preset("tiny"), dtype=jnp.bfloat16, param_dtype=jnp.float32)
    assert model.embed.get_value().dtype == jnp.float32
    assert model(jnp.zeros((1, 4), jnp.int32)).dtype == jnp.float32


@pytest.mark.parametrize("name,params_b", [("qwen2.5-0.5b", 0.49), ("qwen2.5-1.5b", 1.54), ("qwen2.5-3b", 3.09),
                                           ("qwen2.5-7b", 7.62), ("qwen2.5-coder-7b", 7.62)])
def test_preset_parameter_counts_match_published(name, params_b):
    assert PRESETS[name].num_params() / 1e9 == pytest.approx(params_b, rel=0.01)

"""The same model on 8 fake CPU devices (data, fsdp, tensor meshes) gives the single-device logits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hf_reference import make_hf_model
from w4s_jax.models import load_pretrained, make_mesh, shard_model, target_logprobs
from w4s_jax.models.sharding import logical_to_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    # 4 kv heads / 8 heads / 96-wide MLP / vocab 160: every sharded dim divides by 2 and 4
    make_hf_model("qwen2", tie=False, heads=8, kv_heads=4, hidden=64, inter=96, vocab=160).save_pretrained(path)
    return path


@pytest.mark.parametrize("shape", [dict(data=1, fsdp=4, tensor=2), dict(data=8, fsdp=1, tensor=1),
                                   dict(data=2, fsdp=2, tensor=2)])
def test_sharded_forward_equals_single_device(checkpoint, shape):
    assert len(jax.devices()) == 8, "tests/conftest.py should provide 8 fake CPU devices"
    single = load_pretrained(checkpoint, dtype=jnp.float32)
    mesh = make_mesh(**shape)
    sharded = load_pretrained(checkpoint, dtype=jnp.float32, mesh=mesh)
    # parameters really are spread over the mesh
    q = sharded.layers.q_proj.get_value()
    assert len(q.sharding.device_set) == 8 or shape["data"] == 8
    ids = np.random.default_rng(0).integers(0, 160, size=(8, 16))
    mask = np.ones_like(ids)
    mask[3, -5:] = 0
    want = np.asarray(single(ids, mask))
    got = np.asarray(jax.jit(lambda m, i, a: m(i, a))(sharded, ids, mask))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    # resharding an existing single-device model gives the same too
    resharded = shard_model(single, mesh)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda m, i: m(i))(resharded, ids)),
                               np.asarray(single(ids)), atol=1e-5, rtol=1e-5)
    # and so does the target-token path
    tgt = np.roll(ids, -1, axis=1)
    lp = jax.jit(lambda m: target_logprobs(m, ids, tgt, mask, attention_mask=mask))
    np.testing.assert_allclose(np.asarray(lp(sharded)), np.asarray(lp(single)), atol=1e-5)


def test_logical_rules_skip_axes_that_do_not_divide():
    mesh = make_mesh(data=1, fsdp=2, tensor=4)
    # 2 kv heads cannot be split 4 ways: replicated on tensor; 64 embed splits on fsdp
    spec = logical_to_spec(("embed", "kv_heads", "head_dim"), shape=(64, 2, 16), mesh=mesh)
    assert tuple(spec) == ("fsdp", None, None)
    spec = logical_to_spec(("batch", "length"), shape=(8, 5), mesh=make_mesh(data=2, fsdp=4, tensor=1))
    assert tuple(spec) == (("data", "fsdp"), None)

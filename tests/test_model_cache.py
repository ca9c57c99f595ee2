"""The KV-cache forward (what the sampler runs) equals the plain forward; LoRA merging is exact."""
import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.models import get_preset, init_model


def test_prefill_then_decode_matches_full_forward():
    model = init_model(get_preset("tiny"), seed=1)
    rng = np.random.default_rng(0)
    B, P, S, steps = 3, 8, 16, 4
    seq = rng.integers(0, 512, size=(B, P + steps))
    prompt_mask = np.ones((B, P), bool)
    prompt_mask[1, :3] = False  # left padding
    prompt_mask[2, :6] = False
    full_mask = np.concatenate([prompt_mask, np.ones((B, steps), bool)], axis=1)
    positions = np.cumsum(full_mask, axis=1) - 1
    positions = np.where(full_mask, positions, 0)

    want = np.asarray(model(seq, full_mask, positions=positions))

    cache = model.init_cache(B, S)
    slot_mask = np.zeros((B, S), bool)
    slot_mask[:, :P] = prompt_mask
    logits, cache = model(seq[:, :P], slot_mask, positions=positions[:, :P], cache=cache, cache_index=0)
    got = [np.asarray(logits)]
    step = jax.jit(lambda m, ids, mask, pos, c, i: m(ids, mask, positions=pos, cache=c, cache_index=i))
    for t in range(steps):
        slot_mask[:, P + t] = True
        logits, cache = step(model, seq[:, P + t:P + t + 1], slot_mask, positions[:, P + t:P + t + 1], cache, P + t)
        got.append(np.asarray(logits))
    got = np.concatenate(got, axis=1)
    np.testing.assert_allclose(got[full_mask], want[full_mask], atol=1e-5, rtol=1e-5)


def test_lora_equals_merged_weights():
    model = init_model(get_preset("tiny"), seed=0)
    ids = jnp.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    L = model.config.num_layers
    a = jax.random.normal(jax.random.key(0), (L, 64, 4)) * 0.1
    b = jax.random.normal(jax.random.key(1), (L, 4, 4, 16)) * 0.1  # q_proj out dims (heads, head_dim)
    with_lora = model(ids, lora={"q_proj": (a, b)}, lora_scale=2.0)
    q = model.layers.q_proj.get_value()
    model.layers.q_proj.set_value(q + 2.0 * jnp.einsum("ldr,lrhe->ldhe", a, b))
    np.testing.assert_allclose(np.asarray(with_lora), np.asarray(model(ids)), atol=1e-6)

"""Our Flax Qwen2 against transformers' PyTorch models on the same checkpoint."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from hf_reference import hf_logits, make_hf_model
from w4s_jax.models import init_model, load_pretrained, save_pretrained
from w4s_jax.models.config import ModelConfig

CASES = [
    # family, kwargs, shard size
    ("qwen2", dict(tie=False, kv_heads=2, rope_theta=10000.0), None),
    ("qwen2", dict(tie=True, kv_heads=1, rope_theta=1_000_000.0, layers=3), "30KB"),
    ("qwen2", dict(tie=False, kv_heads=4, rope_theta=500.0, seed=3), "10KB"),
    ("qwen3", dict(tie=True, kv_heads=2, head_dim=24), None),
    ("llama", dict(tie=False, kv_heads=2, rope_theta=500000.0,
                   rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=64)), "25KB"),
]


def _batch(vocab, rng):
    ids = rng.integers(0, vocab, size=(3, 21))
    mask = np.ones_like(ids)
    mask[1, -7:] = 0   # right padding
    mask[2, :5] = 0    # left padding
    return ids, mask


@pytest.mark.parametrize("family,kw,shard", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_logits_match_transformers(tmp_path, family, kw, shard):
    ref = make_hf_model(family, **kw)
    ref.save_pretrained(tmp_path, **({"max_shard_size": shard} if shard else {}))
    if shard:
        assert os.path.exists(tmp_path / "model.safetensors.index.json")
    model = load_pretrained(tmp_path, dtype=jnp.float32)
    ids, mask = _batch(ref.config.vocab_size, np.random.default_rng(0))
    want = hf_logits(ref, ids, mask)
    got = np.asarray(jax.jit(lambda m, i, a: m(i, a))(model, ids, mask))
    valid = mask.astype(bool)
    np.testing.assert_allclose(got[valid], want[valid], atol=1e-4, rtol=1e-4)
    # identical greedy next tokens at every real position
    np.testing.assert_array_equal(got[valid].argmax(-1), want[valid].argmax(-1))
    # no mask at all: the plain causal path
    np.testing.assert_allclose(np.asarray(model(ids)), hf_logits(ref, ids), atol=1e-4, rtol=1e-4)


def test_bf16_checkpoint_loads(tmp_path):
    ref = make_hf_model("qwen2", tie=False).to(torch.bfloat16)
    ref.save_pretrained(tmp_path)
    model = load_pretrained(tmp_path, dtype=jnp.float32)
    ids = np.random.default_rng(1).integers(0, 160, size=(2, 9))
    # the bf16 weights, computed in fp32 (a fresh load keeps rope frequencies in fp32)
    ref32 = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    want = hf_logits(ref32, ids)
    np.testing.assert_allclose(np.asarray(model(ids)), want, atol=1e-4, rtol=1e-4)
    bf = load_pretrained(tmp_path, dtype=jnp.bfloat16)
    assert bf.embed.get_value().dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(bf(ids)), want, atol=0.15)


@pytest.mark.parametrize("tie", [True, False])
def test_save_pretrained_round_trip(tmp_path, tie):
    cfg = ModelConfig(vocab_size=150, hidden_size=48, intermediate_size=80, num_layers=2, num_heads=4,
                      num_kv_heads=2, head_dim=12, tie_word_embeddings=tie, rope_theta=20000.0,
                      max_position_embeddings=256, bos_token_id=1, eos_token_id=2)
    model = init_model(cfg, seed=7)
    # biases are zero at init: make them non-trivial so the mapping is exercised
    model.layers.q_bias.set_value(jax.random.normal(jax.random.key(1), model.layers.q_bias.shape) * 0.1)
    model.layers.v_bias.set_value(jax.random.normal(jax.random.key(2), model.layers.v_bias.shape) * 0.1)
    a, b = tmp_path / "a", tmp_path / "b"
    save_pretrained(model, a, max_shard_bytes=40_000)
    save_pretrained(model, b, max_shard_bytes=40_000)
    files = sorted(os.listdir(a))
    assert "model.safetensors.index.json" in files and "generation_config.json" in files
    assert files == sorted(os.listdir(b))
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert json.loads((a / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]

    ref = transformers.AutoModelForCausalLM.from_pretrained(a).eval()
    ids = np.random.default_rng(2).integers(0, 150, size=(2, 13))
    np.testing.assert_allclose(np.asarray(model(ids)), hf_logits(ref, ids), atol=1e-4, rtol=1e-4)
    # and back into JAX
    again = load_pretrained(a, dtype=jnp.float32)
    np.testing.assert_array_equal(np.asarray(again(ids)), np.asarray(model(ids)))

"""Broken checkpoints and configs give one clear error naming the file (and tensor)."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from hf_reference import make_hf_model
from w4s_jax.models import CheckpointError, ConfigError, ModelConfig, load_pretrained


@pytest.fixture()
def sharded_ckpt(tmp_path):
    make_hf_model("qwen2", tie=False, layers=2).save_pretrained(tmp_path, max_shard_size="30KB")
    return tmp_path


def _shards(path):
    return sorted(f for f in os.listdir(path) if f.startswith("model-"))


def test_missing_shard(sharded_ckpt):
    victim = _shards(sharded_ckpt)[1]
    os.remove(sharded_ckpt / victim)
    with pytest.raises(CheckpointError, match=f"{victim}.*not found"):
        load_pretrained(sharded_ckpt, dtype=jnp.float32)


def test_truncated_shard(sharded_ckpt):
    victim = sharded_ckpt / _shards(sharded_ckpt)[-1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=rf"{victim.name}: truncated: tensor '[^']+'"):
        load_pretrained(sharded_ckpt, dtype=jnp.float32)


def test_wrong_tensor_shape(tmp_path):
    ref = make_hf_model("qwen2", tie=False)
    ref.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["intermediate_size"] = 128  # the checkpoint has 96
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' "
                                              r"has shape \(96, 64\), expected \(128, 64\)"):
        load_pretrained(tmp_path, dtype=jnp.float32)


def test_missing_tensor(tmp_path):
    make_hf_model("qwen2", tie=False).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="'model.layers.2.input_layernorm.weight' missing"):
        load_pretrained(tmp_path, dtype=jnp.float32)


def test_unknown_architecture(tmp_path):
    make_hf_model("qwen2").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["architectures"] = ["MistralForCausalLM"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"config.json: unsupported architecture \['MistralForCausalLM'\]"):
        load_pretrained(tmp_path)


def test_config_missing_field(tmp_path):
    make_hf_model("qwen2").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["intermediate_size"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="config.json: missing required field 'intermediate_size'"):
        load_pretrained(tmp_path)


def test_corrupt_header_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        make_hf_model("qwen2").config.save_pretrained(tmp_path)
        load_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt safetensors header"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        load_pretrained(tmp_path)


# Configs as different transformers releases wrote them (published Qwen2.5 checkpoints use the old form).
_OLD_STYLE = {  # transformers 4.4x, as in Qwen/Qwen2.5-Coder-7B-Instruct
    "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "intermediate_size": 18944,
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 152064,
    "max_position_embeddings": 32768, "rope_scaling": None, "use_sliding_window": False,
    "eos_token_id": 151645, "bos_token_id": 151643,
}


def test_config_spellings_across_transformers_releases():
    old = ModelConfig.from_hf_dict(_OLD_STYLE)
    new_style = {k: v for k, v in _OLD_STYLE.items() if k not in ("rope_theta", "torch_dtype", "rope_scaling")}
    new_style.update(dtype="bfloat16", rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    assert ModelConfig.from_hf_dict(new_style) == old
    assert old.head_dim == 128 and old.num_kv_heads == 4 and old.rope_theta == 1e6
    # very old configs omit num_key_value_heads (= multi-head attention)
    mha = {k: v for k, v in _OLD_STYLE.items() if k != "num_key_value_heads"}
    assert ModelConfig.from_hf_dict(mha).num_kv_heads == 28
    # a round trip through our writer
    assert ModelConfig.from_hf_dict(old.to_hf_dict()) == old
    with pytest.raises(ConfigError, match="unsupported rope_scaling type 'yarn'"):
        ModelConfig.from_hf_dict(dict(_OLD_STYLE, rope_scaling={"type": "yarn", "factor": 4.0}))
    with pytest.raises(ConfigError, match="not a multiple"):
        ModelConfig.from_hf_dict(dict(_OLD_STYLE, num_key_value_heads=5))

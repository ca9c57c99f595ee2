"""LoRA runs: only the factors train, the policy export is the merged model, the adapter is written in PEFT's
layout (checked against peft.PeftModel on the transformers base model) and a run can start from one."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import peft
import pytest
import torch
from safetensors.numpy import load_file

from hf_reference import hf_logits, make_hf_model
from train_fixtures import policy_params, read_metrics, tiny_config
from w4s_jax.models import load_pretrained
from w4s_jax.train.checkpointing import Checkpointer
from w4s_jax.train.lora import as_model_lora
from w4s_jax.train.peft_io import AdapterError, load_adapter
from w4s_jax.train.synthetic import build_tiny_tokenizer
from w4s_jax.train.trainable import LoraTraining
from w4s_jax.train.trainer import train

TARGETS = ("q_proj", "v_proj", "o_proj", "gate_proj", "down_proj")


def _params(model):
    from flax import nnx

    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


@pytest.mark.slow
def test_lora_run_exports_a_peft_adapter_and_can_start_from_one(tmp_path):
    hf = make_hf_model("qwen2", vocab=512, hidden=64, inter=96, heads=4, kv_heads=2, seed=2).float()
    hf_dir = tmp_path / "hf"
    hf.save_pretrained(hf_dir)
    build_tiny_tokenizer(str(hf_dir))  # the synthetic trajectories' tokenizer, beside the weights
    lora = {"model.path": str(hf_dir), "lora.enabled": True, "lora.rank": 4, "lora.alpha": 8.0,
            "lora.targets": TARGETS, "optim.lr": 1e-2}
    cfg = tiny_config(tmp_path / "lora", total_steps=3, **lora)
    summary = train(cfg)
    adapter_dir = os.path.join(cfg.workdir, "adapter")
    assert summary["adapter"] == adapter_dir

    # PEFT layout: config and module names as peft and vLLM expect, trained (non-zero) B factors
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 4, 8.0)
    assert sorted(config["target_modules"]) == sorted(TARGETS)
    tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    assert len(tensors) == 2 * 2 * len(TARGETS)
    assert tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"].shape == (4, 64)
    assert tensors["base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"].shape == (64, 4)
    assert all(np.abs(v).max() > 1e-4 for k, v in tensors.items() if ".lora_B." in k)

    # the independent reference: peft on the transformers base model computes our LoRA model's logits
    ids = np.random.default_rng(0).integers(0, 512, size=(2, 24)).astype(np.int32)
    base = load_pretrained(hf_dir, dtype=jnp.float32)
    adapter = load_adapter(adapter_dir, base.config)
    ours = np.asarray(base(ids, lora=as_model_lora(adapter.factors), lora_scale=adapter.alpha / adapter.rank))
    with torch.no_grad():
        want = hf_logits(peft.PeftModel.from_pretrained(hf, adapter_dir).eval(), ids)
    np.testing.assert_allclose(ours, want, atol=1e-4, rtol=0)
    assert np.abs(ours - np.asarray(base(ids))).max() > 1e-3  # the adapter changes the model

    # the adapter holds the checkpoint's factors; only factors were trained; the policy export is the merge
    state, _ = Checkpointer(os.path.join(cfg.workdir, "checkpoints")).read(3)
    assert set(state["params"]) == set(TARGETS)
    for t in TARGETS:
        for k in ("a", "b"):
            np.testing.assert_array_equal(adapter.factors[t][k], np.asarray(state["params"][t][k]))
    merged, p = policy_params(cfg.workdir, 3)
    b = _params(base)
    for name in ("k_proj", "up_proj"):
        np.testing.assert_array_equal(p["layers"][name], b["layers"][name])
    np.testing.assert_array_equal(p["embed"], b["embed"])
    np.testing.assert_allclose(np.asarray(merged(ids)), ours, atol=2e-5)

    # lora.init_from: a new run starts from the adapter (its first loss, on the same first batch, is the
    # trained model's), and loading keeps the factors exactly
    again = tiny_config(tmp_path / "again", total_steps=3, stop_after=1,
                        **dict(lora, **{"lora.init_from": adapter_dir, "lora.rank": 8, "lora.alpha": 1.0}))
    train(again)
    first, resumed = read_metrics(cfg.workdir)[0]["loss"], read_metrics(again.workdir)[0]["loss"]
    assert resumed < first - 0.05, (first, resumed)
    loaded, _ = LoraTraining(base, targets=TARGETS, rank=8, alpha=1.0, init_from=adapter_dir).split(base)
    for t in TARGETS:
        np.testing.assert_array_equal(np.asarray(loaded[t]["b"]), adapter.factors[t]["b"])
    again_cfg = json.load(open(os.path.join(again.workdir, "adapter", "adapter_config.json")))
    assert (again_cfg["r"], again_cfg["lora_alpha"]) == (4, 8.0)  # the adapter's rank and alpha applied


def test_bad_adapters_are_one_clear_error(tmp_path):
    from w4s_jax.models import get_preset

    cfg = get_preset("tiny")
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        load_adapter(str(tmp_path), cfg)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                                              "use_dora": True}))
    with pytest.raises(AdapterError, match="unsupported adapter: use_dora=true"):
        load_adapter(str(tmp_path), cfg)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    from safetensors.numpy import save_file

    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{prefix}.lora_A.weight": np.zeros((4, 64), np.float32),
               f"{prefix}.lora_B.weight": np.zeros((64, 4), np.float32)}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(AdapterError, match=r"layers\.1\.self_attn\.q_proj\.lora_A\.weight is missing"):
        load_adapter(str(tmp_path), cfg)

"""Tiny random transformers (PyTorch) models: the independent reference the JAX code is checked against.

Every parameter is randomised, biases and norm scales included, so a wrong mapping cannot hide behind
zeros or ones.
"""
from __future__ import annotations

import torch
import transformers


def make_hf_model(family: str = "qwen2", *, vocab=160, hidden=64, inter=96, layers=2, heads=4, kv_heads=2,
                  rope_theta=10000.0, tie=False, seed=0, head_dim=None, rope_scaling=None, max_pos=512):
    torch.manual_seed(seed)
    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, tie_word_embeddings=tie,
                  max_position_embeddings=max_pos, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
    if family == "qwen2":
        cfg = transformers.Qwen2Config(rope_theta=rope_theta, **common)
        cls = transformers.Qwen2ForCausalLM
    elif family == "qwen3":
        cfg = transformers.Qwen3Config(rope_theta=rope_theta, head_dim=head_dim or hidden // heads, **common)
        cls = transformers.Qwen3ForCausalLM
    elif family == "llama":
        rs = dict(rope_scaling, rope_type="llama3", rope_theta=rope_theta) if rope_scaling else None
        cfg = transformers.LlamaConfig(rope_theta=rope_theta, **common)
        if rs:
            cfg = transformers.LlamaConfig(rope_parameters=rs, **common)
        cls = transformers.LlamaForCausalLM
    else:
        raise ValueError(family)
    model = cls(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    return model


def hf_logits(model, input_ids, attention_mask=None):
    with torch.no_grad():
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        mask = None if attention_mask is None else torch.as_tensor(attention_mask, dtype=torch.long)
        return model(input_ids=ids, attention_mask=mask).logits.float().numpy()

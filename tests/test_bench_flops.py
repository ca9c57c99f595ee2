"""w4s_jax/flops.py, the one model of work behind the trainer's MFU and the benchmarks: FLOPs against XLA's
own count of the compiled step, decode bytes for Qwen2.5-7B by hand, the accelerator table."""
import dataclasses

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from w4s_jax.flops import accelerator, decode_bytes_per_step, peak_flops, peak_hbm_bytes_s, step_flops
from w4s_jax.models import get_preset, init_model
from w4s_jax.train import metrics


def _xla_flops(fn, *args) -> float:
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"]


def test_step_flops_agree_with_xla_cost_analysis():
    # One layer (XLA counts a scanned layer stack's body once), untied head, matmuls large enough to dominate
    # the element-wise work that XLA also counts and our model does not.
    cfg = dataclasses.replace(get_preset("tiny"), hidden_size=256, intermediate_size=768, num_heads=4,
                              num_kv_heads=2, head_dim=64, vocab_size=1024, num_layers=1, tie_word_embeddings=False)
    graphdef, state = nnx.split(init_model(cfg, dtype=jnp.float32))
    batch, seq = 2, 256
    ids = jnp.zeros((batch, seq), jnp.int32)

    def loss(state, ids):
        return jax.nn.logsumexp(nnx.merge(graphdef, state)(ids), -1).mean()

    def loss_of_embedding(embed, state, ids):  # every matmul weight frozen, activations still differentiated
        return loss({**state, "embed": embed}, ids)

    full = _xla_flops(jax.grad(loss), state, ids)
    frozen = _xla_flops(jax.grad(loss_of_embedding), state["embed"], state, ids)
    tokens = batch * seq
    ours_full = step_flops(cfg, tokens=tokens, loss_tokens=tokens, seq_len=seq)
    ours_frozen = step_flops(cfg, tokens=tokens, loss_tokens=tokens, seq_len=seq, lora=True)
    assert 0.85 * full < ours_full <= full  # measured 0.94
    assert 0.85 * frozen < ours_frozen <= frozen  # measured 0.91
    # only the output head's share scales with loss tokens
    head = 6 * cfg.vocab_size * cfg.hidden_size
    assert step_flops(cfg, tokens=tokens, loss_tokens=10, seq_len=seq) == pytest.approx(ours_full - head * (tokens - 10))


def test_decode_bytes_for_qwen25_7b():
    cfg = get_preset("qwen2.5-7b")
    got = decode_bytes_per_step(cfg, rows=5, prompt_len=4096, new_tokens=513, param_bytes=2, cache_bytes=2)
    # Untied: the 152064 x 3584 input table is gathered (5 rows), not read; the output head is read whole.
    weights = (cfg.num_params() - 152064 * 3584) * 2
    kv = 2 * 28 * 5 * (4096 + 256) * 4 * 128 * 2
    assert got == weights + kv
    assert 14.0e9 < weights < 14.5e9
    tied = get_preset("qwen2.5-0.5b")
    assert decode_bytes_per_step(tied, rows=1, prompt_len=1, new_tokens=1, param_bytes=2, cache_bytes=0) \
        == tied.num_params() * 2


def test_accelerator_table_and_overrides():
    assert accelerator("NVIDIA H100 80GB HBM3").bf16_tflops == 989.0
    assert accelerator("NVIDIA H100 80GB HBM3").hbm_gbps == 3350.0
    assert accelerator("NVIDIA H100 PCIe").bf16_tflops == 756.0
    assert accelerator("NVIDIA H200").hbm_gbps == 4800.0
    assert accelerator("TPU v5 lite").bf16_tflops == 197.0 and accelerator("TPU v5p").bf16_tflops == 459.0
    assert accelerator("cpu") is None
    assert peak_flops(override_tflops=2.0) == 2e12 and peak_hbm_bytes_s(override_gbps=3.0) == 3e9
    if jax.devices()[0].platform == "cpu":
        assert peak_flops() is None and peak_hbm_bytes_s() is None
    # the trainer's MFU metric uses this very model
    assert metrics.step_flops is step_flops and metrics.peak_flops is peak_flops

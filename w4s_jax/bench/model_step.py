"""Forward+backward of the model vs transformers' PyTorch Qwen2 on the same weights and batch.

Two shapes of work:
- "full": every token carries loss and both sides compute full [B, T, V] logits (identical work);
- "rlao": only the action (the last `loss_frac` of each row) carries loss, as in RLAO training. Ours uses
  the target-token path (only loss positions are projected to the vocabulary); PyTorch computes full
  logits as the public W4S trainer does.
"""
from __future__ import annotations

import math
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from w4s_jax.bench.timing import interleaved
from w4s_jax.models import get_preset, init_model, save_pretrained, target_logprobs


def _batch(cfg, batch: int, seq: int, loss_frac: float, seed: int):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg.vocab_size, size=(batch, seq)).astype(np.int32)
    targets = np.roll(ids, -1, axis=1)
    mask = np.zeros((batch, seq), bool)
    start = seq - max(1, int(round(loss_frac * seq)))
    mask[:, start:seq - 1] = True  # the action sits at the end of the state; the last token has no target
    return ids, targets, mask


def _jax_step(model, *, chunked: bool, max_tokens: int, chunk_size: int):
    graphdef, state = nnx.split(model)

    def loss_fn(state, ids, targets, mask):
        m = nnx.merge(graphdef, state)
        if chunked:
            lp = target_logprobs(m, ids, targets, mask, max_tokens=max_tokens, chunk_size=chunk_size)
        else:
            logits = m(ids)  # [B, T, V]: the work PyTorch does
            lp = (jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
                  - jax.nn.logsumexp(logits, axis=-1))
        return -(lp * mask).sum() / mask.sum()

    return jax.jit(jax.value_and_grad(loss_fn)), state


def run(preset: str = "bench-50m", batch: int = 2, seq: int = 512, loss_frac: float = 0.3, reps: int = 5,
        chunk_size: int = 1024, torch_threads: int | None = None, seed: int = 0, log=print) -> dict:
    import torch
    import transformers

    cfg = get_preset(preset)
    torch.set_num_threads(torch_threads or os.cpu_count())
    model = init_model(cfg, seed=seed, dtype=jnp.float32)
    log(f"config {preset}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, hidden {cfg.hidden_size}, "
        f"{cfg.num_layers} layers; batch {batch} x {seq} tokens; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(model, d)
        ref = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                                attn_implementation="sdpa")
    ref.train()
    results = {"preset": preset, "params_m": cfg.num_params() / 1e6, "batch": batch, "seq": seq}
    tokens = batch * seq

    for shape, frac in (("full", 1.0), ("rlao", loss_frac)):
        ids, targets, mask = _batch(cfg, batch, seq, frac, seed)
        n_loss = int(mask.sum())
        max_tokens = 128 * math.ceil(n_loss / 128)  # bucketed, as the trainer does
        # ours: full logits for "full" (identical work), target-token path for "rlao"
        step, state = _jax_step(model, chunked=(shape == "rlao"), max_tokens=max_tokens, chunk_size=chunk_size)
        args = (state, jnp.asarray(ids), jnp.asarray(targets), jnp.asarray(mask))
        t0 = time.perf_counter()
        compiled = step.lower(*args).compile()
        compile_s = time.perf_counter() - t0
        mem = compiled.memory_analysis()
        jax_loss = float(compiled(*args)[0])
        # the full-logits JAX path too, for the memory comparison
        full_step, _ = _jax_step(model, chunked=False, max_tokens=0, chunk_size=chunk_size)
        full_mem = full_step.lower(*args).compile().memory_analysis()

        labels = torch.as_tensor(np.where(np.roll(mask, 1, axis=1), ids, -100), dtype=torch.long)
        t_ids = torch.as_tensor(ids, dtype=torch.long)

        def torch_step():
            ref.zero_grad(set_to_none=True)
            out = ref(input_ids=t_ids, labels=labels)
            out.loss.backward()
            return float(out.loss)

        torch_loss = torch_step()
        if not np.isclose(jax_loss, torch_loss, rtol=2e-3, atol=2e-3):
            raise AssertionError(f"{shape}: losses differ: ours {jax_loss:.5f} vs PyTorch {torch_loss:.5f}")
        times = interleaved({"jax": lambda: jax.block_until_ready(compiled(*args)), "torch": torch_step},
                            reps=reps, warmup=1)
        r = {
            "loss_tokens": n_loss, "jax_tok_s": tokens / times["jax"], "torch_tok_s": tokens / times["torch"],
            "ratio": times["torch"] / times["jax"], "compile_s": compile_s,
            "jax_temp_mib": mem.temp_size_in_bytes / 2**20 if mem else None,
            "jax_full_logits_temp_mib": full_mem.temp_size_in_bytes / 2**20 if full_mem else None,
            "logits_mib": tokens * cfg.vocab_size * 4 / 2**20,
        }
        results[shape] = r
        log(f"[{shape}] loss tokens {n_loss}/{tokens}: ours {r['jax_tok_s']:.0f} tok/s, PyTorch "
            f"{r['torch_tok_s']:.0f} tok/s, ratio {r['ratio']:.2f}x; compile {compile_s:.1f}s; "
            f"XLA temp memory {r['jax_temp_mib']:.0f} MiB (full-logits path {r['jax_full_logits_temp_mib']:.0f} MiB; "
            f"one fp32 logits tensor is {r['logits_mib']:.0f} MiB)")
    return results


def train_flops_per_token(cfg, seq: int) -> float:
    """Forward+backward FLOPs per token: 6 x matmul parameters (the output head counts even when tied,
    the embedding lookup does not) plus causal attention (QK^T and PV over on average seq/2 keys)."""
    D, H, K, E, F, L = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size,
                        cfg.num_layers)
    matmul_params = L * (2 * D * H * E + 2 * D * K * E + 3 * D * F) + cfg.vocab_size * D
    attention = 3 * L * (2 * 2 * H * E * seq / 2)
    return 6 * matmul_params + attention


def run_accelerator(preset: str = "qwen2.5-7b", batch: int = 1, seq: int = 4096, dtype: str = "bfloat16",
                    remat: str = "full", reps: int = 5, peak_tflops: float = 989.0, seed: int = 0,
                    log=print) -> dict:
    """Our forward+backward alone (full logits, every token carries loss) with random weights: tokens/s
    and MFU against `peak_tflops` (dense bf16 of the card: H100 SXM 989)."""
    cfg = get_preset(preset)
    model = init_model(cfg, seed=seed, dtype=jnp.dtype(dtype), remat=remat)
    ids, targets, mask = _batch(cfg, batch, seq, 1.0, seed)
    n_loss = int(mask.sum())
    step, state = _jax_step(model, chunked=True, max_tokens=1024 * math.ceil(n_loss / 1024), chunk_size=1024)
    args = (state, jnp.asarray(ids), jnp.asarray(targets), jnp.asarray(mask))
    t0 = time.perf_counter()
    compiled = step.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t = interleaved({"jax": lambda: jax.block_until_ready(compiled(*args))}, reps=reps, warmup=2)["jax"]
    tok_s = batch * seq / t
    flops = train_flops_per_token(cfg, seq) * tok_s
    stats = jax.devices()[0].memory_stats() or {}
    r = {"preset": preset, "device": str(jax.devices()[0].device_kind), "batch": batch, "seq": seq,
         "dtype": dtype, "remat": remat, "tok_s": tok_s, "mfu": flops / (peak_tflops * 1e12),
         "compile_s": compile_s, "peak_mem_gib": stats.get("peak_bytes_in_use", 0) / 2**30}
    log(f"[{preset} {dtype} remat={remat}] {r['device']}: {tok_s:.0f} tok/s, MFU {100 * r['mfu']:.1f}% "
        f"(peak {peak_tflops} TFLOP/s), compile {compile_s:.1f}s, peak memory {r['peak_mem_gib']:.1f} GiB")
    return r

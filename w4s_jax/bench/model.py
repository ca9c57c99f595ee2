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

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import fmt_spread, interleaved, speedup
from w4s_jax.flops import device_kind, peak_flops, step_flops
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


def _compile(step, args):
    t0 = time.perf_counter()
    compiled = step.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def run_reference(model: str = "bench-50m", batch: int = 2, seq: int = 512, loss_frac: float = 0.3, reps: int = 5,
                  chunk_size: int = 1024, compare_memory: bool = True, torch_threads: int | None = None,
                  seed: int = 0, log=print) -> dict:
    """`compare_memory`: also compile the full-logits path of the RLAO shape for its XLA temporary memory."""
    import torch
    import transformers

    cfg = get_preset(model)
    torch.set_num_threads(torch_threads or os.cpu_count())
    ours = init_model(cfg, seed=seed, dtype=jnp.float32)
    log(f"model {model}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, hidden {cfg.hidden_size}, "
        f"{cfg.num_layers} layers; batch {batch} x {seq} tokens; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; {reps} interleaved repetitions")
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(ours, d)
        ref = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="sdpa")
    ref.train()
    results = {"model": model, "params_m": cfg.num_params() / 1e6, "batch": batch, "seq": seq}
    tokens = batch * seq

    for shape, frac in (("full", 1.0), ("rlao", loss_frac)):
        ids, targets, mask = _batch(cfg, batch, seq, frac, seed)
        n_loss = int(mask.sum())
        max_tokens = 128 * math.ceil(n_loss / 128)  # bucketed, as the trainer does
        args = (jnp.asarray(ids), jnp.asarray(targets), jnp.asarray(mask))
        # ours: full logits for "full" (identical work), target-token path for "rlao"
        step, state = _jax_step(ours, chunked=(shape == "rlao"), max_tokens=max_tokens, chunk_size=chunk_size)
        compiled, compile_s = _compile(step, (state, *args))
        mem = compiled.memory_analysis()
        full_mem = mem if shape == "full" else None
        if shape == "rlao" and compare_memory:  # the full-logits path's memory too, for the comparison
            full_step, _ = _jax_step(ours, chunked=False, max_tokens=0, chunk_size=chunk_size)
            full_mem = full_step.lower(state, *args).compile().memory_analysis()
        labels = torch.as_tensor(np.where(np.roll(mask, 1, axis=1), ids, -100), dtype=torch.long)
        t_ids = torch.as_tensor(ids, dtype=torch.long)

        def torch_step():
            ref.zero_grad(set_to_none=True)
            out = ref(input_ids=t_ids, labels=labels)
            out.loss.backward()
            return float(out.loss.detach())

        jax_loss, torch_loss = float(compiled(state, *args)[0]), torch_step()
        if not np.isclose(jax_loss, torch_loss, rtol=2e-3, atol=2e-3):
            raise AssertionError(f"{shape}: losses differ: ours {jax_loss:.5f} vs PyTorch {torch_loss:.5f}")
        times = interleaved({"ours": lambda: jax.block_until_ready(compiled(state, *args)), "torch": torch_step},
                            reps=reps, warmup=1)
        r = results[shape] = {
            "loss_tokens": n_loss, "ours_tok_s": times["ours"].rate(tokens), "torch_tok_s": times["torch"].rate(tokens),
            "speedup": speedup(times["ours"], times["torch"]), "compile_s": compile_s,
            "ours_temp_mib": mem.temp_size_in_bytes / 2**20 if mem else None,
            "ours_full_logits_temp_mib": full_mem.temp_size_in_bytes / 2**20 if full_mem else None,
            "logits_mib": tokens * cfg.vocab_size * 4 / 2**20,
        }
        full = r["ours_full_logits_temp_mib"]
        log(f"[{shape}] loss tokens {n_loss}/{tokens}: ours {r['ours_tok_s']['median']:.0f} tok/s, PyTorch "
            f"{r['torch_tok_s']['median']:.0f} tok/s, {fmt_spread(r['speedup'])}x; compile {compile_s:.1f}s; XLA temp "
            f"memory {r['ours_temp_mib']:.0f} MiB" + (f" (full-logits path {full:.0f} MiB)" if full else "")
            + f"; one fp32 logits tensor is {r['logits_mib']:.0f} MiB")
    return results


def run_accelerator(model: str = "qwen2.5-7b", batch: int = 1, seq: int = 4096, dtype: str = "bfloat16",
                    remat: str = "full", reps: int = 3, peak_tflops: float = 0.0, seed: int = 0, log=print) -> dict:
    """Our forward+backward alone, every token carrying loss (full output head), random weights: tokens/s,
    MFU against the card's dense bf16 peak (w4s_jax/flops.py, or `peak_tflops`) and peak memory."""
    cfg = get_preset(model)
    net = init_model(cfg, seed=seed, dtype=jnp.dtype(dtype), remat=remat)
    ids, targets, mask = _batch(cfg, batch, seq, 1.0, seed)
    n_loss = int(mask.sum())
    step, state = _jax_step(net, chunked=True, max_tokens=1024 * math.ceil(n_loss / 1024), chunk_size=1024)
    del net
    args = (state, jnp.asarray(ids), jnp.asarray(targets), jnp.asarray(mask))
    compiled, compile_s = _compile(step, args)
    t = interleaved({"ours": lambda: jax.block_until_ready(compiled(*args))}, reps=reps, warmup=2)["ours"]
    tokens = batch * seq
    flops = step_flops(cfg, tokens=tokens, loss_tokens=n_loss, seq_len=seq)
    peak = peak_flops(override_tflops=peak_tflops)
    stats = jax.devices()[0].memory_stats() or {}
    r = {"model": model, "device": device_kind(), "batch": batch, "seq": seq, "dtype": dtype, "remat": remat,
         "tok_s": t.rate(tokens), "step_flops": flops, "peak_flops": peak, "mfu": t.fraction_of_peak(flops, peak),
         "compile_s": compile_s, "peak_mem_gib": stats.get("peak_bytes_in_use", 0) / 2**30 if stats else None}
    mfu = "n/a (unknown peak: set peak_tflops)" if not peak else f"{100 * r['mfu']['median']:.1f}%"
    log(f"[{model} {dtype} remat={remat}] {r['device']}: {r['tok_s']['median']:.0f} tok/s, MFU {mfu}, compile "
        f"{compile_s:.1f}s, peak memory {r['peak_mem_gib'] or 0:.1f} GiB")
    return r


def main(config) -> None:
    """launch/bench_model.py: configs/bench_model.py's keys are the parameters of the function it runs."""
    run_config(config, reference=run_reference, accelerator=run_accelerator)

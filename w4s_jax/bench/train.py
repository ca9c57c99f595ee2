"""Train-step throughput: our jitted RLAO step vs the public W4S trainer's formulation in PyTorch.

The reference does what the public W4S training code does: a transformers model, a Python loop over the
examples, full [T, V] logits for each, token cross-entropy over the action times exp(r / tau), averaged
over the batch, then an AdamW step. Ours runs the same batch through `step.make_train_step` (target-token
log-probs: only action positions reach the 152k-way output head). Both start from the same weights, and
their losses are checked to agree before anything is timed; the sides' repetitions are interleaved.
Tokens/s counts real (unpadded) tokens. With `lora=True` both sides train LoRA adapters of the same rank,
alpha and target projections on a frozen base: ours (w4s_jax/train/trainable.py) against `peft`'s.

`run_accelerator`: Qwen2.5-7B shapes with random bf16 weights, LoRA or full training (bf16 optimizer state,
remat): tokens/s, MFU (w4s_jax/flops.py) and peak memory, plus the PyTorch reference on the same card (in
its own process, before ours) when torch with CUDA is installed.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.bench.config import run_config
from w4s_jax.bench.isolated import run_isolated
from w4s_jax.bench.timing import fmt_spread, interleaved, speedup
from w4s_jax.flops import device_kind, peak_flops, step_flops
from w4s_jax.models import get_preset, init_model, save_pretrained
from w4s_jax.models.sharding import ShardingRules, make_mesh
from w4s_jax.train import objectives, optim
from w4s_jax.train import step as step_lib
from w4s_jax.train.batches import assemble, loss_token_cap
from w4s_jax.train.data import Example
from w4s_jax.train.trainable import FullTraining, LoraTraining

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TAU = 0.4


def rlao_examples(vocab: int, n: int, seq: int, action_frac: float, seed: int = 0) -> list[Example]:
    """Long states, the action (about `action_frac` of the tokens) at the end; lengths vary up to `seq`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(seq * (0.85 + 0.15 * (i + 1) / n))
        ids = rng.integers(0, vocab, size=length).astype(np.int32)
        n_act = max(2, int(round(action_frac * length)))
        mask = np.zeros(length, bool)
        mask[length - n_act - 1:length - 1] = True
        out.append(Example(ids=ids, loss_mask=mask, reward=float(rng.choice([0.0, 0.5, 1.0])), state=i // 2,
                           chosen=False))
    return out


def _optim_cfg(lr: float, state_dtype: str = ""):
    return types.SimpleNamespace(lr=lr, min_lr_ratio=1.0, warmup_steps=0, b1=0.9, b2=0.999, eps=1e-8,
                                 weight_decay=0.0, grad_clip=0.0, state_dtype=state_dtype)


def ours(model, examples, *, seq: int, lora_rank: int = 0, state_dtype: str = "", accum: int = 1,
         chunk_size: int = 1024, lr: float = 1e-5):
    """(run() -> loss, compile seconds, memory analysis) for our train step on `examples`; LoRA with
    `lora_rank` (alpha = 2 x rank) on LORA_TARGETS, else full training."""
    rules = ShardingRules(make_mesh(1, 1, 1, devices=jax.devices()[:1]))
    obj = objectives.get("rwr")(tau=TAU)
    n = len(examples)
    host = assemble(examples, list(range(n)), n, seq, 1, [[i] for i in range(n)])
    tx = optim.make_optimizer(_optim_cfg(lr, state_dtype), 1000)
    training = (LoraTraining(model, targets=LORA_TARGETS, rank=lora_rank, alpha=2.0 * lora_rank) if lora_rank
                else FullTraining(model))
    trainable, frozen = training.split(model)
    state = {"params": trainable, "opt": tx.init(trainable), "step": jnp.int32(0)}
    spec = step_lib.StepSpec(training, obj, accum_steps=accum, chunk_size=chunk_size)
    train_step = step_lib.make_train_step(spec, tx)
    batch = step_lib.device_batch(host, rules, obj)
    cap = loss_token_cap(step_lib.micro_loss_counts(host, accum, 1), limit=n // accum * seq, minimum=128)
    t0 = time.perf_counter()
    compiled = train_step.lower(state, frozen, batch, max_tokens=cap).compile()
    compile_s = time.perf_counter() - t0
    box = {"state": state}

    def run():
        box["state"], metrics = compiled(box["state"], frozen, batch)
        return float(metrics["loss"])

    return run, compile_s, compiled.memory_analysis()


def with_peft_lora(hf_model, rank: int):
    """`peft` LoRA of our adapters' rank, alpha (2 x rank) and targets, no dropout: the base is frozen."""
    import peft

    return peft.get_peft_model(hf_model, peft.LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                                         target_modules=list(LORA_TARGETS), bias="none"))


def reference(hf_model, examples, *, lr: float = 1e-5, device: str = "cpu"):
    """The public W4S formulation: per-example loop, full logits, CE over the action x exp(r / tau); AdamW
    over whatever requires gradients (every weight, or the adapters)."""
    import torch

    opt = torch.optim.AdamW([p for p in hf_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    data = []
    for e in examples:
        ids = torch.as_tensor(e.ids[None].astype(np.int64), device=device)
        labels = np.where(np.concatenate([[False], e.loss_mask[:-1]]), e.ids, -100)
        data.append((ids, torch.as_tensor(labels[None].astype(np.int64), device=device), math.exp(e.reward / TAU)))

    def run():
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for ids, labels, w in data:
            out = hf_model(input_ids=ids, labels=labels)  # full [T, V] logits, mean CE over labelled tokens
            loss = out.loss * w / len(data)
            loss.backward()
            total += float(loss.detach())
        opt.step()
        return total

    return run


def _sizes(examples) -> tuple[int, int]:
    return sum(len(e) for e in examples), sum(int(e.loss_mask.sum()) for e in examples)


def run_reference(model: str = "bench-50m", batch: int = 4, seq: int = 1024, action_frac: float = 0.3,
                  lora: bool = False, lora_rank: int = 16, reps: int = 3, threads: int | None = None, seed: int = 0,
                  log=print) -> dict:
    import torch
    import transformers

    cfg = get_preset(model)
    torch.set_num_threads(threads or os.cpu_count())
    net = init_model(cfg, seed=seed, dtype=jnp.float32)
    examples = rlao_examples(cfg.vocab_size, batch, seq, action_frac, seed)
    tokens, loss_tokens = _sizes(examples)
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(net, d)
        hf = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="sdpa")
    if lora:
        hf = with_peft_lora(hf, lora_rank)
    hf.train()
    what = f"LoRA rank {lora_rank} on {len(LORA_TARGETS)} projections (reference: peft)" if lora else "full"
    log(f"{model}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, {what}; batch {batch} examples, "
        f"{tokens} tokens, {loss_tokens} action tokens ({100 * loss_tokens / tokens:.0f}%); jax {jax.__version__} "
        f"{jax.devices()[0].platform}, torch {torch.__version__} ({torch.get_num_threads()} threads); {reps} "
        "interleaved repetitions")
    run_ours, compile_s, mem = ours(net, examples, seq=seq, lora_rank=lora_rank if lora else 0)
    run_ref = reference(hf, examples)
    a, b = run_ours(), run_ref()  # the first step of each from identical weights (LoRA: B = 0): same loss
    if not np.isclose(a, b, rtol=2e-3, atol=2e-3):
        raise AssertionError(f"losses differ: ours {a:.5f}, PyTorch reference {b:.5f}")
    t = interleaved({"ours": run_ours, "reference": run_ref}, reps=reps, warmup=0)
    r = {"model": model, "lora": lora, "lora_rank": lora_rank if lora else None, "tokens": tokens,
         "loss_tokens": loss_tokens, "loss_ours": a, "loss_reference": b, "ours_tok_s": t["ours"].rate(tokens),
         "reference_tok_s": t["reference"].rate(tokens), "speedup": speedup(t["ours"], t["reference"]),
         "compile_s": compile_s, "ours_temp_mib": mem.temp_size_in_bytes / 2**20 if mem else None}
    log(f"train step: ours {fmt_spread(r['ours_tok_s'], 0)} tok/s, public W4S formulation (PyTorch"
        f"{' + peft' if lora else ''}) {fmt_spread(r['reference_tok_s'], 0)} tok/s: {fmt_spread(r['speedup'])}x "
        f"(compile {compile_s:.1f}s)")
    return r


def run_accelerator(model: str = "qwen2.5-coder-7b", batch: int = 1, seq: int = 8192, lora: bool = True,
                    lora_rank: int = 16, dtype: str = "bfloat16", remat: str = "full", reps: int = 3,
                    peak_tflops: float = 0.0, torch_reference: bool = False, seed: int = 0, log=print) -> dict:
    """Our train step alone, random weights (full: bf16 params and Adam state): tokens/s, MFU, peak memory.
    The PyTorch reference, when asked for, runs first in its own process, so the two never share memory."""
    ref = {}
    if torch_reference:
        ref = run_isolated("w4s_jax.bench.train:torch_reference_accelerator",
                           dict(model=model, batch=batch, seq=seq, lora=lora, lora_rank=lora_rank, dtype=dtype,
                                reps=reps, seed=seed), timeout_s=1800, log=log)
    cfg = get_preset(model)
    net = init_model(cfg, seed=seed, dtype=jnp.dtype(dtype), param_dtype=jnp.dtype(dtype), remat=remat)
    examples = rlao_examples(cfg.vocab_size, batch, seq, 0.3, seed)
    tokens, loss_tokens = _sizes(examples)
    run, compile_s, _ = ours(net, examples, seq=seq, lora_rank=lora_rank if lora else 0,
                             state_dtype="" if lora else dtype)
    del net
    t = interleaved({"ours": run}, reps=reps, warmup=1)["ours"]
    flops = step_flops(cfg, tokens=tokens, loss_tokens=loss_tokens, seq_len=seq, lora=lora)
    peak = peak_flops(override_tflops=peak_tflops)
    stats = jax.devices()[0].memory_stats() or {}
    r = {"model": model, "device": device_kind(), "lora": lora, "lora_rank": lora_rank if lora else None,
         "dtype": dtype, "remat": remat, "batch": batch, "seq": seq, "tokens": tokens, "loss_tokens": loss_tokens,
         "tok_s": t.rate(tokens), "step_flops": flops, "peak_flops": peak, "mfu": t.fraction_of_peak(flops, peak),
         "compile_s": compile_s, "peak_mem_gib": stats["peak_bytes_in_use"] / 2**30 if stats else None}
    mfu = "n/a (unknown peak: set peak_tflops)" if not peak else f"{100 * r['mfu']['median']:.1f}%"
    mem = "n/a" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.1f} GiB"
    log(f"[{model} {'lora' if lora else 'full'} {dtype} remat={remat}] {r['device']}: "
        f"{r['tok_s']['median']:.0f} tok/s, MFU {mfu}, peak memory {mem}, compile {compile_s:.0f}s")
    if ref.get("tok_s"):
        r["reference_tok_s"] = ref["tok_s"]
        r["speedup"] = r["tok_s"]["median"] / ref["tok_s"]["median"]
        log(f"PyTorch reference (public W4S formulation): {ref['tok_s']['median']:.0f} tok/s; ours "
            f"{r['speedup']:.2f}x")
    elif torch_reference:
        r["reference_note"] = ref.get("note") or ref.get("error", "")
    return r


def torch_reference_accelerator(model, batch, seq, lora, lora_rank, dtype, reps, seed, log=print) -> dict:
    """The public W4S formulation (peft LoRA or full) with random weights of `model`'s shapes, on CUDA
    (or on the CPU when JAX_PLATFORMS=cpu, for tests)."""
    import torch
    import transformers

    if not torch.cuda.is_available() and os.environ.get("JAX_PLATFORMS", "") != "cpu":
        return {"tok_s": None, "note": "torch has no CUDA device"}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = get_preset(model)
    tdtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, torch.float32)
    hf_cfg = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.to_hf_dict(torch_dtype=dtype).items()
                                                  if k not in ("architectures", "transformers_version")})
    torch.manual_seed(seed)
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg, dtype=tdtype).to(device)
    hf.gradient_checkpointing_enable()
    if lora:
        hf.enable_input_require_grads()  # checkpointed blocks over a frozen embedding still need input grads
        hf = with_peft_lora(hf, lora_rank)
    hf.train()
    examples = rlao_examples(cfg.vocab_size, batch, seq, 0.3, seed)
    try:
        t = interleaved({"ref": reference(hf, examples, device=device)}, reps=reps, warmup=1)["ref"]
    except torch.OutOfMemoryError as e:
        return {"tok_s": None, "note": f"out of memory: {str(e)[:200]}"}
    return {"tok_s": t.rate(_sizes(examples)[0])}


def main(config) -> None:
    """launch/bench_train.py: configs/bench_train.py's keys are the parameters of the function it runs."""
    run_config(config, reference=run_reference, accelerator=run_accelerator)

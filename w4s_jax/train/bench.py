"""Train-step throughput: our jitted RLAO step vs the public W4S trainer's formulation in PyTorch.

The reference does what the public W4S training code does: a transformers model, a Python loop over the
examples, full [T, V] logits for each, token cross-entropy over the action times exp(r / tau), averaged
over the batch, then an AdamW step. Ours runs the same batch through `step.make_train_step` (target-token
log-probs: only action positions reach the 152k-way output head). Both start from the same weights, and
their losses are checked to agree before anything is timed. Tokens/s counts real (unpadded) tokens.

`run_device` is the accelerator mode: Qwen2.5-7B shapes with random bf16 weights, LoRA or full training
(bf16 optimizer state, remat), reporting tokens/s, MFU and peak memory, plus the PyTorch reference on the
same GPU when torch with CUDA is installed.
"""
from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.models import get_preset, init_model, save_pretrained
from w4s_jax.models.sharding import ShardingRules, make_mesh
from w4s_jax.train import objectives, optim
from w4s_jax.train import step as step_lib
from w4s_jax.train.batches import assemble, loss_token_cap
from w4s_jax.train.data import Example
from w4s_jax.train.metrics import peak_flops, step_flops
from w4s_jax.train.trainable import FullTraining, LoraTraining

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
    """(run() -> loss, compile seconds, memory analysis) for our train step on `examples`."""
    rules = ShardingRules(make_mesh(1, 1, 1, devices=jax.devices()[:1]))
    obj = objectives.get("rwr")(tau=TAU)
    n = len(examples)
    host = assemble(examples, list(range(n)), n, seq, 1, [[i] for i in range(n)])
    tx = optim.make_optimizer(_optim_cfg(lr, state_dtype), 1000)
    if lora_rank:
        training = LoraTraining(model, targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj"), rank=lora_rank, alpha=2.0 * lora_rank)
    else:
        training = FullTraining(model)
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


def reference(hf_model, examples, *, lr: float = 1e-5, device: str = "cpu"):
    """The public W4S formulation: per-example loop, full logits, CE over the action x exp(r / tau)."""
    import torch

    opt = torch.optim.AdamW(hf_model.parameters(), lr=lr, weight_decay=0.0)
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


def _timed(fns: dict, reps: int) -> dict:
    """Median seconds per call, the candidates interleaved so machine noise hits both alike."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def run_cpu(preset: str = "bench-50m", batch: int = 4, seq: int = 1024, action_frac: float = 0.3, reps: int = 3,
            threads: int | None = None, seed: int = 0, log=print) -> dict:
    import torch
    import transformers

    cfg = get_preset(preset)
    torch.set_num_threads(threads or os.cpu_count())
    model = init_model(cfg, seed=seed, dtype=jnp.float32)
    examples = rlao_examples(cfg.vocab_size, batch, seq, action_frac, seed)
    tokens = sum(len(e) for e in examples)
    loss_tokens = sum(int(e.loss_mask.sum()) for e in examples)
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(model, d)
        hf = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="sdpa")
    hf.train()
    log(f"{preset}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}; batch {batch} examples, "
        f"{tokens} tokens, {loss_tokens} action tokens ({100 * loss_tokens / tokens:.0f}%); jax {jax.__version__} "
        f"{jax.devices()[0].platform}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    run_ours, compile_s, mem = ours(model, examples, seq=seq)
    run_ref = reference(hf, examples)
    a, b = run_ours(), run_ref()  # the first step of each from identical weights: same loss
    if not np.isclose(a, b, rtol=2e-3, atol=2e-3):
        raise AssertionError(f"losses differ: ours {a:.5f}, PyTorch reference {b:.5f}")
    t = _timed({"ours": run_ours, "reference": run_ref}, reps)
    r = {"preset": preset, "tokens": tokens, "loss_tokens": loss_tokens, "loss_ours": a, "loss_reference": b,
         "ours_tok_s": tokens / t["ours"], "reference_tok_s": tokens / t["reference"],
         "ratio": t["reference"] / t["ours"], "compile_s": compile_s,
         "ours_temp_mib": mem.temp_size_in_bytes / 2**20 if mem else None}
    log(f"train step: ours {r['ours_tok_s']:.0f} tok/s, public W4S formulation (PyTorch) "
        f"{r['reference_tok_s']:.0f} tok/s: {r['ratio']:.2f}x (median of {reps}; compile {compile_s:.1f}s)")
    return r


def run_device(preset: str = "qwen2.5-coder-7b", batch: int = 1, seq: int = 8192, mode: str = "lora",
               dtype: str = "bfloat16", remat: str = "full", lora_rank: int = 16, reps: int = 3,
               peak_tflops: float = 0.0, torch_reference: bool = True, seed: int = 0, log=print) -> dict:
    """Our train step on an accelerator with random weights (full: bf16 params and Adam state).

    The PyTorch reference (random weights of the same shapes) runs first, in its own process, so the two
    never hold accelerator memory at the same time."""
    if mode not in ("lora", "full"):
        raise ValueError(f"mode must be lora or full, got {mode!r}")
    ref = _torch_in_subprocess(preset, batch, seq, mode, dtype, reps, seed, log) if torch_reference else {}
    cfg = get_preset(preset)
    model = init_model(cfg, seed=seed, dtype=jnp.dtype(dtype), param_dtype=jnp.dtype(dtype), remat=remat)
    examples = rlao_examples(cfg.vocab_size, batch, seq, 0.3, seed)
    tokens = sum(len(e) for e in examples)
    loss_tokens = sum(int(e.loss_mask.sum()) for e in examples)
    run, compile_s, _ = ours(model, examples, seq=seq, lora_rank=lora_rank if mode == "lora" else 0,
                             state_dtype=dtype if mode == "full" else "")
    del model
    run()
    t = _timed({"ours": run}, reps)["ours"]
    flops = step_flops(cfg, tokens=tokens, loss_tokens=loss_tokens, seq_len=seq, lora=mode == "lora")
    peak = peak_flops(override_tflops=peak_tflops)
    stats = jax.devices()[0].memory_stats() or {}
    r = {"preset": preset, "device": str(jax.devices()[0].device_kind), "mode": mode, "dtype": dtype,
         "remat": remat, "batch": batch, "seq": seq, "tok_s": tokens / t, "compile_s": compile_s,
         "mfu": flops / t / peak if peak else None,
         "peak_mem_gib": stats.get("peak_bytes_in_use", 0) / 2**30 if stats else None}
    mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
    mem = "n/a" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.1f} GiB"
    log(f"[{preset} {mode} {dtype} remat={remat}] {r['device']}: {r['tok_s']:.0f} tok/s, MFU {mfu}, "
        f"peak memory {mem}, compile {compile_s:.0f}s")
    r["reference_tok_s"] = ref.get("tok_s")
    r["reference_note"] = ref.get("note", "")
    if r["reference_tok_s"]:
        r["ratio"] = r["tok_s"] / r["reference_tok_s"]
        log(f"PyTorch reference (public W4S formulation): {r['reference_tok_s']:.0f} tok/s; ours {r['ratio']:.2f}x")
    return r


def _torch_in_subprocess(preset, batch, seq, mode, dtype, reps, seed, log) -> dict:
    import json
    import subprocess
    import sys

    code = (f"from w4s_jax.train.bench import torch_reference_main as m; "
            f"m({preset!r}, {batch}, {seq}, {mode!r}, {dtype!r}, {reps}, {seed})")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        log(f"PyTorch reference did not run: {tail[:300]}")
        return {"note": tail[:300]}
    return json.loads(lines[-1])


def torch_reference_main(preset, batch, seq, mode, dtype, reps, seed) -> None:
    """Child process: the public W4S formulation with random weights of `preset`'s shapes; prints JSON."""
    import json

    import torch
    import transformers

    if not torch.cuda.is_available() and os.environ.get("JAX_PLATFORMS", "") != "cpu":
        print(json.dumps({"tok_s": None, "note": "torch has no CUDA device"}))
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = get_preset(preset)
    tdtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, torch.float32)
    hf_cfg = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.to_hf_dict(torch_dtype=dtype).items()
                                                  if k not in ("architectures", "transformers_version")})
    torch.manual_seed(seed)
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg, dtype=tdtype).to(device)
    hf.gradient_checkpointing_enable()
    hf.train()
    if mode == "lora":  # the base is frozen; only the (here: bias) adapters train
        for name, p in hf.named_parameters():
            p.requires_grad_(name.endswith("bias"))
    examples = rlao_examples(cfg.vocab_size, batch, seq, 0.3, seed)
    try:
        run = reference(hf, examples, device=device)
        run()
        t = _timed({"ref": run}, reps)["ref"]
    except torch.OutOfMemoryError as e:
        print(json.dumps({"tok_s": None, "note": f"out of memory: {str(e)[:200]}"}))
        return
    print(json.dumps({"tok_s": sum(len(e) for e in examples) / t}))

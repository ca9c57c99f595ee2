"""launch/bench_gpu.py: every accelerator figure the README promises, in one run on one GPU (or TPU chip),
within a time budget, into one JSON:

  decode          decode tokens/s at batch 5 (5 samples of one 4096-token prompt) as a fraction of the HBM
                  roofline (Qwen2.5-7B, bf16)
  model_fwd_bwd   7B forward+backward at 4096 tokens: tokens/s, MFU, peak memory
  train_lora      7B RLAO train step at 8192 tokens, LoRA rank 16: tokens/s, MFU, peak memory
  train_full      the same, full-parameter training (bf16 params and Adam state)

Each section runs in its own process (w4s_jax/bench/isolated.py), so its peak memory is its own and a
section that fails or overruns the budget costs only itself. Compiled programs are cached in
<workdir>/jax_cache, so a rerun spends its time measuring rather than compiling.
"""
from __future__ import annotations

import os
import time

from w4s_jax.bench.config import run_config
from w4s_jax.bench.isolated import run_isolated

SECTIONS = {  # run in this order: the cheapest first, so a tight budget loses the least
    "decode": "w4s_jax.bench.sampler:run_accelerator",
    "model_fwd_bwd": "w4s_jax.bench.model:run_accelerator",
    "train_lora": "w4s_jax.bench.train:run_accelerator",
    "train_full": "w4s_jax.bench.train:run_accelerator",
}
MIN_SECTION_S = 30.0  # a section is not started with less time than this left


def _summary(sections: dict) -> dict:
    """The README's figures: medians (min and max are in the sections)."""
    def median(section, key):
        value = sections[section].get(key)
        return value["median"] if isinstance(value, dict) else value

    out = {"decode_tok_s": median("decode", "decode_tok_s"),
           "decode_roofline_fraction": median("decode", "roofline_fraction")}
    for name in ("model_fwd_bwd", "train_lora", "train_full"):
        out[name] = {"tok_s": median(name, "tok_s"), "mfu": median(name, "mfu"),
                     "peak_mem_gib": sections[name].get("peak_mem_gib")}
    return out


def run(decode: dict, model_fwd_bwd: dict, train_lora: dict, train_full: dict, *, budget_s: float = 480.0,
        reps: int = 3, peak_tflops: float = 0.0, hbm_gbps: float = 0.0, workdir: str = "runs/bench",
        log=print) -> dict:
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.abspath(os.path.join(workdir, "jax_cache")))
    # JAX takes 75% of the card by default: 7B full training (bf16 weights, gradients, Adam) needs more.
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
    settings = {"decode": dict(decode, hbm_gbps=hbm_gbps),  # dict(): a config's sections are ConfigDicts
                "model_fwd_bwd": dict(model_fwd_bwd, peak_tflops=peak_tflops),
                "train_lora": dict(train_lora, peak_tflops=peak_tflops),
                "train_full": dict(train_full, peak_tflops=peak_tflops)}
    sections = {}
    for name, target in SECTIONS.items():
        left = deadline - time.perf_counter()
        if left < MIN_SECTION_S:
            sections[name] = {"error": f"not run: {left:.0f} s of the {budget_s:.0f} s budget left"}
            log(f"== {name}: {sections[name]['error']}")
            continue
        log(f"== {name} ({left:.0f} s of the budget left)")
        sections[name] = run_isolated(target, dict(settings[name], reps=reps), timeout_s=left, env=env, log=log)
        if "error" in sections[name]:
            log(f"== {name} failed: {sections[name]['error']}")
    total_s = time.perf_counter() - t0
    failed = [k for k, v in sections.items() if "error" in v]
    res = {"device": next((v["device"] for v in sections.values() if "device" in v), None), "total_s": total_s,
           "budget_s": budget_s, "complete": not failed, "failed": failed, "sections": sections}
    if not failed:
        res["summary"] = _summary(sections)
    log(f"bench_gpu: {len(SECTIONS) - len(failed)} of {len(SECTIONS)} sections in {total_s:.0f} s "
        f"(budget {budget_s:.0f} s) on {res['device']}" + (f"; failed: {failed}" if failed else ""))
    return res


def main(config) -> None:
    """launch/bench_gpu.py: configs/bench_gpu.py's keys are `run`'s parameters."""
    run_config(config, default=run)

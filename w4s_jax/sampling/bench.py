"""Sampler speed, behind launch/bench_sampler.py.

- `run_reference`: ours vs transformers' PyTorch `generate` (its KV cache) on the same weights (saved once,
  loaded by both), same work: n samples of one prompt, a fixed number of new tokens, no stop ids. Decode
  tokens/s are measured the same way on both sides, (time of a full call - time of a 1-token call) for the
  n * (new - 1) tokens after the first, so prefill is excluded (transformers prefills the prompt n times,
  we once: that gain is reported separately, as prefill seconds). Compile time is the first call's excess
  over a warm call.
- `run_accelerator`: ours alone (random weights, e.g. Qwen2.5-7B shapes in bf16): decode tokens/s and the
  fraction of the memory-bandwidth bound, i.e. (bytes that one decode step must read: every weight once,
  the embedding table only where it is also the output head, plus the valid KV cache) / HBM bandwidth,
  divided by the measured time per step.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.models import get_preset, init_model, save_pretrained
from w4s_jax.sampling.sampler import compile_counts, sample


def _median_time(fn, reps: int) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run_reference(preset: str = "bench-50m", prompt_len: int = 1024, n: int = 5, new_tokens: int = 256,
                  temperature: float = 1.0, top_p: float = 1.0, reps: int = 3, torch_threads: int | None = None,
                  seed: int = 0, log=print) -> dict:
    import torch
    import transformers

    cfg = get_preset(preset)
    torch.set_num_threads(torch_threads or os.cpu_count())
    log(f"config {preset}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, hidden {cfg.hidden_size}, "
        f"{cfg.num_layers} layers, fp32; {n} samples of one {prompt_len}-token prompt, {new_tokens} new tokens, "
        f"temperature {temperature}, top_p {top_p}; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; load {os.getloadavg()[0]:.1f}")
    ours = init_model(cfg, seed=seed, dtype=jnp.float32)
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(ours, d)
        hf = transformers.Qwen2ForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    hf.generation_config.eos_token_id = None  # both sides generate exactly new_tokens
    prompt = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=prompt_len).tolist()
    ids = torch.tensor([prompt])

    def hf_call(new):
        with torch.no_grad():
            out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                              temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=n,
                              max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
        assert out.shape == (n, prompt_len + new)

    stats = {}

    def our_call(new):
        res = sample(ours, [prompt], max_new_tokens=new, temperature=temperature, top_p=top_p, n=n, seed=seed)
        assert all(len(s) == new for s in res.tokens[0])
        stats[new] = res.stats

    first = {}
    for new in (1, new_tokens):
        t0 = time.perf_counter()
        our_call(new)
        first[new] = time.perf_counter() - t0
    hf_call(1)  # warm-up
    times = {k: [] for k in ("ours_full", "ours_one", "hf_full", "hf_one")}
    decode_only = []
    for _ in range(reps):  # interleaved, so load from other processes falls on both alike
        times["ours_full"].append(_median_time(lambda: our_call(new_tokens), 1))
        decode_only.append(stats[new_tokens]["decode_s"])
        times["ours_one"].append(_median_time(lambda: our_call(1), 1))
        times["hf_full"].append(_median_time(lambda: hf_call(new_tokens), 1))
        times["hf_one"].append(_median_time(lambda: hf_call(1), 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    decode_tokens = n * (new_tokens - 1)
    ours_tps = decode_tokens / (med["ours_full"] - med["ours_one"])
    hf_tps = decode_tokens / (med["hf_full"] - med["hf_one"])
    res = dict(
        preset=preset, prompt_len=prompt_len, n=n, new_tokens=new_tokens, temperature=temperature, top_p=top_p,
        ours_decode_tok_s=ours_tps, hf_decode_tok_s=hf_tps, speedup=ours_tps / hf_tps,
        ours_decode_tok_s_internal=n * new_tokens / statistics.median(decode_only),
        ours_prefill_s=med["ours_one"], hf_prefill_s=med["hf_one"], ours_total_s=med["ours_full"],
        hf_total_s=med["hf_full"],
        ours_compile_s=sum(first[k] for k in first) - med["ours_full"] - med["ours_one"],
        compiles=compile_counts(), load_after=os.getloadavg()[0])
    log(f"decode tokens/s: ours {ours_tps:.1f}, transformers {hf_tps:.1f} -> {res['speedup']:.2f}x "
        f"(ours from the decode loop alone: {res['ours_decode_tok_s_internal']:.1f})")
    log(f"1-token call (prefill): ours {med['ours_one']:.2f} s, transformers {med['hf_one']:.2f} s; full call: "
        f"ours {med['ours_full']:.2f} s, transformers {med['hf_full']:.2f} s")
    log(f"our compile time (both programs, both calls): {res['ours_compile_s']:.1f} s; load now "
        f"{res['load_after']:.1f}")
    return res


def decode_bytes_per_step(cfg, *, rows: int, prompt_len: int, new_tokens: int, param_bytes: int,
                          cache_bytes: int) -> float:
    """Bytes one decode step must read, averaged over the steps: all weights once (the embedding table only
    when it doubles as the output head; otherwise just `rows` of it) plus the KV cache of the valid tokens."""
    n_params = cfg.num_params()
    embed = cfg.vocab_size * cfg.hidden_size
    weights = (n_params - (0 if cfg.tie_word_embeddings else embed)) * param_bytes
    avg_len = prompt_len + (new_tokens - 1) / 2
    kv = 2 * cfg.num_layers * rows * avg_len * cfg.num_kv_heads * cfg.head_dim * cache_bytes
    return weights + kv


def run_accelerator(preset: str = "qwen2.5-7b", dtype: str = "bfloat16", prompt_len: int = 4096, n: int = 5,
                    new_tokens: int = 512, reps: int = 3, hbm_gbps: float = 3350.0, seed: int = 0,
                    log=print) -> dict:
    cfg = get_preset(preset)
    dt = jnp.dtype(dtype)
    dev = jax.devices()[0]
    log(f"config {preset}: {cfg.num_params() / 1e9:.2f}B params, {dtype}; {n} samples of one {prompt_len}-token "
        f"prompt, {new_tokens} new tokens; {dev.platform} {getattr(dev, 'device_kind', '')}")
    t0 = time.perf_counter()
    model = init_model(cfg, seed=seed, dtype=dt)
    jax.block_until_ready(model.embed.get_value())
    log(f"random init: {time.perf_counter() - t0:.1f} s")
    prompt = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=prompt_len).tolist()

    def call():
        return sample(model, [prompt], max_new_tokens=new_tokens, temperature=1.0, top_p=0.95, n=n, seed=seed)

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    runs = [call() for _ in range(reps)]
    decode_s = statistics.median(r.stats["decode_s"] for r in runs)
    prefill_s = statistics.median(r.stats["prefill_s"] for r in runs)
    steps = runs[0].stats["steps"]
    step_s = decode_s / steps
    nbytes = decode_bytes_per_step(cfg, rows=n, prompt_len=prompt_len, new_tokens=new_tokens,
                                   param_bytes=dt.itemsize, cache_bytes=dt.itemsize)
    bound_s = nbytes / (hbm_gbps * 1e9)
    res = dict(preset=preset, dtype=dtype, prompt_len=prompt_len, n=n, new_tokens=new_tokens,
               device=f"{dev.platform} {getattr(dev, 'device_kind', '')}", decode_tok_s=n * steps / decode_s,
               step_ms=step_s * 1e3, bytes_per_step=nbytes, bandwidth_bound_ms=bound_s * 1e3,
               bandwidth_fraction=bound_s / step_s, prefill_s=prefill_s,
               compile_s=first - decode_s - prefill_s, hbm_gbps=hbm_gbps)
    log(f"decode: {res['decode_tok_s']:.1f} tokens/s, {res['step_ms']:.2f} ms/step; bandwidth bound "
        f"{res['bandwidth_bound_ms']:.2f} ms/step ({nbytes / 1e9:.2f} GB at {hbm_gbps:.0f} GB/s) -> "
        f"{100 * res['bandwidth_fraction']:.1f}% of the bound; prefill {prefill_s:.2f} s; compile "
        f"{res['compile_s']:.1f} s")
    return res

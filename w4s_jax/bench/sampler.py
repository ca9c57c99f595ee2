"""Sampler decode speed, behind launch/bench_sampler.py.

- `run_reference`: ours vs transformers' PyTorch `generate` (its KV cache) on the same weights (saved once,
  loaded by both), same work: n samples of one prompt, a fixed number of new tokens, no stop ids. Decode
  tokens/s are measured the same way on both sides, (time of a full call - time of a 1-token call) for the
  n * (new - 1) tokens after the first, so prefill is excluded (transformers prefills the prompt n times,
  we once: that gain is reported separately, as prefill seconds). The four calls (ours full, ours 1-token,
  transformers full, transformers 1-token) are interleaved, repetition by repetition.
- `run_accelerator`: ours alone (random weights, e.g. Qwen2.5-7B shapes in bf16): decode tokens/s and the
  fraction of the memory-bandwidth roofline (w4s_jax/flops.py: the bytes one step must read / the card's
  bandwidth) reached by the measured time per step.
"""
from __future__ import annotations

import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import Timing, fmt_spread, interleaved, spread
from w4s_jax.flops import decode_bytes_per_step, device_kind, peak_hbm_bytes_s
from w4s_jax.models import get_preset, init_model, save_pretrained
from w4s_jax.sampling.sampler import compile_counts, sample


def run_reference(model: str = "bench-50m", prompt_len: int = 1024, n: int = 5, new_tokens: int = 256,
                  temperature: float = 1.0, top_p: float = 1.0, reps: int = 3, torch_threads: int | None = None,
                  seed: int = 0, log=print) -> dict:
    import torch
    import transformers

    cfg = get_preset(model)
    torch.set_num_threads(torch_threads or os.cpu_count())
    log(f"model {model}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, hidden {cfg.hidden_size}, "
        f"{cfg.num_layers} layers, fp32; {n} samples of one {prompt_len}-token prompt, {new_tokens} new tokens, "
        f"temperature {temperature}, top_p {top_p}; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; {reps} interleaved repetitions")
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

    decode_loop = Timing()  # our sampler's own decode-loop timer, for comparison

    def our_call(new):
        res = sample(ours, [prompt], max_new_tokens=new, temperature=temperature, top_p=top_p, n=n, seed=seed)
        assert all(len(s) == new for s in res.tokens[0])
        if new == new_tokens:
            decode_loop.samples.append(res.stats["decode_s"] / res.stats["steps"] * (new_tokens - 1))

    t0 = time.perf_counter()
    our_call(1)
    our_call(new_tokens)
    first_calls_s = time.perf_counter() - t0
    decode_loop.samples.clear()
    hf_call(1)  # transformers' warm-up
    t = interleaved({"ours_full": lambda: our_call(new_tokens), "ours_one": lambda: our_call(1),
                     "hf_full": lambda: hf_call(new_tokens), "hf_one": lambda: hf_call(1)}, reps=reps, warmup=0)
    decode_tokens = n * (new_tokens - 1)
    ours_s = [f - o for f, o in zip(t["ours_full"].samples, t["ours_one"].samples)]
    hf_s = [f - o for f, o in zip(t["hf_full"].samples, t["hf_one"].samples)]
    res = dict(
        model=model, prompt_len=prompt_len, n=n, new_tokens=new_tokens, temperature=temperature, top_p=top_p,
        ours_decode_tok_s=Timing(ours_s).rate(decode_tokens), hf_decode_tok_s=Timing(hf_s).rate(decode_tokens),
        speedup=spread(h / o for o, h in zip(ours_s, hf_s)),
        ours_decode_loop_tok_s=decode_loop.rate(decode_tokens),
        ours_prefill_s=t["ours_one"].seconds(), hf_prefill_s=t["hf_one"].seconds(),
        ours_total_s=t["ours_full"].seconds(), hf_total_s=t["hf_full"].seconds(),
        ours_compile_s=first_calls_s - t["ours_full"].median - t["ours_one"].median, compiles=compile_counts())
    log(f"decode tokens/s: ours {fmt_spread(res['ours_decode_tok_s'], 1)}, transformers "
        f"{fmt_spread(res['hf_decode_tok_s'], 1)} -> {fmt_spread(res['speedup'])}x (ours from the decode loop "
        f"alone: {res['ours_decode_loop_tok_s']['median']:.1f})")
    log(f"1-token call (prefill): ours {t['ours_one'].median:.2f} s, transformers {t['hf_one'].median:.2f} s; full "
        f"call: ours {t['ours_full'].median:.2f} s, transformers {t['hf_full'].median:.2f} s; our compile time "
        f"(both programs, both calls): {res['ours_compile_s']:.1f} s")
    return res


def run_accelerator(model: str = "qwen2.5-7b", dtype: str = "bfloat16", prompt_len: int = 4096, n: int = 5,
                    new_tokens: int = 512, reps: int = 3, hbm_gbps: float = 0.0, seed: int = 0, log=print) -> dict:
    """`hbm_gbps`: the card's memory bandwidth (0: from w4s_jax/flops.py's table by device kind)."""
    cfg = get_preset(model)
    dt = jnp.dtype(dtype)
    log(f"model {model}: {cfg.num_params() / 1e9:.2f}B params, {dtype}; {n} samples of one {prompt_len}-token "
        f"prompt, {new_tokens} new tokens; {device_kind()}")
    t0 = time.perf_counter()
    net = init_model(cfg, seed=seed, dtype=dt)
    jax.block_until_ready(net.embed.get_value())
    log(f"random init: {time.perf_counter() - t0:.1f} s")
    prompt = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=prompt_len).tolist()
    stats = []

    def call():
        r = sample(net, [prompt], max_new_tokens=new_tokens, temperature=1.0, top_p=0.95, n=n, seed=seed)
        stats.append(r.stats)

    t0 = time.perf_counter()
    call()
    first_s = time.perf_counter() - t0
    stats.clear()
    interleaved({"ours": call}, reps=reps, warmup=0)
    step = Timing([s["decode_s"] / s["steps"] for s in stats])  # seconds per decode step
    prefill = Timing([s["prefill_s"] for s in stats])
    nbytes = decode_bytes_per_step(cfg, rows=n, prompt_len=prompt_len, new_tokens=new_tokens,
                                   param_bytes=dt.itemsize, cache_bytes=dt.itemsize)
    bandwidth = peak_hbm_bytes_s(override_gbps=hbm_gbps)
    res = dict(model=model, dtype=dtype, prompt_len=prompt_len, n=n, new_tokens=new_tokens, device=device_kind(),
               decode_tok_s=step.rate(n), step_ms={k: v * 1e3 for k, v in spread(step.samples).items()},
               bytes_per_step=nbytes, hbm_bytes_s=bandwidth,
               roofline_ms=nbytes / bandwidth * 1e3 if bandwidth else None,
               roofline_fraction=step.fraction_of_peak(nbytes, bandwidth), prefill_s=prefill.seconds(),
               compile_s=first_s - step.median * stats[0]["steps"] - prefill.median)
    frac = ("n/a (unknown bandwidth: set hbm_gbps)" if bandwidth is None else
            f"{100 * res['roofline_fraction']['median']:.1f}% of the roofline ({res['roofline_ms']:.2f} ms/step: "
            f"{nbytes / 1e9:.2f} GB at {bandwidth / 1e9:.0f} GB/s)")
    log(f"decode: {res['decode_tok_s']['median']:.1f} tokens/s, {res['step_ms']['median']:.2f} ms/step, {frac}; "
        f"prefill {prefill.median:.2f} s; compile {res['compile_s']:.1f} s")
    return res


def main(config) -> None:
    """launch/bench_sampler.py: configs/bench_sampler.py's keys are the parameters of the function it runs."""
    run_config(config, reference=run_reference, accelerator=run_accelerator)

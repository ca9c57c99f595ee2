"""Policy server throughput, behind launch/bench_serve.py.

One in-process `PolicyServer` over a random model of the preset (saved in the HF layout with the tiny chat
tokenizer, whose ids fit any vocabulary). Three ways to get the same replies, interleaved repetition by
repetition so that load from other processes falls on all of them alike:

- `concurrent`: `requests` chat requests (n samples of `new_tokens` each, its own seed each) sent at once
  through the official async `openai` client: the server batches them (one sampler call, checked);
- `sequential`: the same requests one after another through the same server (one call each);
- `direct`: one `sample_requests` call with the same batch, no HTTP: the server's overhead is
  concurrent / direct - 1 (request parsing, chat template, batching wait, decoding the replies, HTTP).

Throughput is completion tokens per second. Seeded requests draw the same random numbers on every side, so
the sides do equal work; the samples that come out identical are counted (`identical_samples`): rows of
batches of different shapes differ in the last bits of their logits (about 1e-6), which tips a draw where
two tokens are nearly tied, and a random model's flat 152k-token distributions have many near ties.
"""
from __future__ import annotations

import asyncio
import tempfile
import time

import jax
import jax.numpy as jnp

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import Timing, fmt_spread, interleaved, spread
from w4s_jax.models import chat_prompt_ids, get_preset, init_model, save_pretrained
from w4s_jax.sampling import SampleRequest, compile_counts, sample_requests
from w4s_jax.serve import PolicyServer
from w4s_jax.train.synthetic import build_tiny_tokenizer


def _contents(tokenizer, count: int, prompt_tokens: int) -> list[str]:
    """`count` different user messages of about `prompt_tokens` tokens each."""
    base = ("Design a workflow that calls the executor to solve math word problems, reading comprehension "
            "and code generation tasks; vote on answers, verify them with code, and improve on feedback. ")
    ids = tokenizer.encode(base * (1 + prompt_tokens // 8))
    return [tokenizer.decode(ids[:max(1, prompt_tokens - 12)]) + f" #{i}" for i in range(count)]


def run(model: str = "bench-50m", requests: int = 16, n: int = 5, new_tokens: int = 256, prompt_tokens: int = 256,
        temperature: float = 1.0, top_p: float = 1.0, batch_wait_ms: float = 20.0, reps: int = 1, seed: int = 0,
        log=print) -> dict:
    import openai

    cfg = get_preset(model)
    log(f"model {model}: {cfg.num_params() / 1e6:.1f}M params, vocab {cfg.vocab_size}, fp32; {requests} chat "
        f"requests x n={n} x {new_tokens} new tokens, prompts of ~{prompt_tokens} tokens, temperature "
        f"{temperature}, top_p {top_p}; jax {jax.__version__} on {jax.devices()[0].platform}; {reps} interleaved "
        f"repetitions")
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(init_model(cfg, seed=seed, dtype=jnp.float32), d)
        tok = build_tiny_tokenizer(d)
        srv = PolicyServer(d, dtype="float32", max_batch=requests * n, batch_wait_ms=batch_wait_ms).start()
    try:
        bodies = [dict(model="bench", messages=[{"role": "user", "content": c}], n=n, temperature=temperature,
                       top_p=top_p, max_tokens=new_tokens, seed=seed + i)
                  for i, c in enumerate(_contents(tok, requests, prompt_tokens))]
        policy = srv.engine.policy
        batch = [SampleRequest(chat_prompt_ids(tok, b["messages"]), max_new_tokens=new_tokens,
                               temperature=temperature, top_p=top_p, n=n, seed=b["seed"]) for b in bodies]
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0, timeout=3600)
        replies: dict[str, list] = {}
        calls: dict[str, list[int]] = {"concurrent": [], "sequential": []}
        per_request = Timing()

        def texts(rs):
            return [[c.message.content for c in r.choices] for r in rs]

        async def burst():
            async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="unused", max_retries=0,
                                          timeout=3600) as ac:
                return await asyncio.gather(*(ac.chat.completions.create(**b) for b in bodies))

        def counted(name, fn):
            before = srv.stats["sampler_calls"]
            out = fn()
            calls[name].append(srv.stats["sampler_calls"] - before)
            return out

        def concurrent():
            replies["concurrent"] = counted("concurrent", lambda: asyncio.run(burst()))

        def one(b):
            t0 = time.perf_counter()
            r = client.chat.completions.create(**b)
            per_request.samples.append(time.perf_counter() - t0)
            return r

        def sequential():
            replies["sequential"] = counted("sequential", lambda: [one(b) for b in bodies])

        def direct():
            replies["direct"] = sample_requests(policy.model, batch, stop_ids=policy.stop_ids)

        t0 = time.perf_counter()
        concurrent()
        one(bodies[0])   # compiles the one-request programs
        direct()
        warm_s = time.perf_counter() - t0
        per_request.samples.clear()
        calls = {k: [] for k in calls}
        compiles = compile_counts()
        t = interleaved({"concurrent": concurrent, "direct": direct, "sequential": sequential}, reps=reps, warmup=0)
        recompiled = compile_counts() != compiles
        # Equal work on every side: the same samples (a batch of another shape rounds the logits differently in
        # the last bits, which can tip a draw between nearly tied tokens: counted, not hidden).
        flat = lambda per_request: [s for per in per_request for s in per]
        conc, seq = flat(texts(replies["concurrent"])), flat(texts(replies["sequential"]))
        dire = [tok.decode(s, skip_special_tokens=True) for s in flat(replies["direct"].tokens)]
        identical = {"concurrent_vs_direct": sum(a == b for a, b in zip(conc, dire)),
                     "concurrent_vs_sequential": sum(a == b for a, b in zip(conc, seq)), "of": len(conc)}
        same = identical["concurrent_vs_direct"] == identical["concurrent_vs_sequential"] == len(conc)
        tokens = sum(r.usage.completion_tokens for r in replies["concurrent"])
    finally:
        srv.stop()
    res = dict(
        model=model, requests=requests, n=n, new_tokens=new_tokens, prompt_tokens=prompt_tokens,
        completion_tokens=tokens, concurrent_tok_s=t["concurrent"].rate(tokens),
        sequential_tok_s=t["sequential"].rate(tokens), direct_tok_s=t["direct"].rate(tokens),
        concurrent_vs_sequential=spread(s / c for c, s in zip(t["concurrent"].samples, t["sequential"].samples)),
        server_overhead=spread(c / d - 1 for c, d in zip(t["concurrent"].samples, t["direct"].samples)),
        concurrent_s=t["concurrent"].seconds(), sequential_s=t["sequential"].seconds(), direct_s=t["direct"].seconds(),
        sequential_request_s=per_request.seconds(), sampler_calls=calls, same_replies=same,
        identical_samples=identical,
        recompiled_in_steady_state=recompiled, warmup_s=warm_s)
    log(f"throughput: {requests} concurrent requests {fmt_spread(res['concurrent_tok_s'], 1)} tok/s, one after "
        f"another {fmt_spread(res['sequential_tok_s'], 1)} tok/s -> {fmt_spread(res['concurrent_vs_sequential'])}x "
        f"(goal >= 3x); sampler calls per burst {calls['concurrent']}, per sequence {calls['sequential']}")
    log(f"server overhead vs one direct sample_requests call on the same batch: "
        f"{fmt_spread({k: 100 * v for k, v in res['server_overhead'].items()}, 1)} % (goal <= 10 %); "
        f"direct {t['direct'].median:.2f} s, through the server {t['concurrent'].median:.2f} s; identical samples "
        f"{identical}; recompiled after warm-up: {recompiled}")
    return res


def main(config) -> None:
    """launch/bench_serve.py: configs/bench_serve.py's keys are the parameters of `run`."""
    run_config(config, run=run)

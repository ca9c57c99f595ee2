"""The quickstart (the README's main command): `--config=configs/quickstart.py[:preset]`.

  (default)   the embedded default: simulated executor, tiny meta-agent (built once, cached), iterated RLAO
              on the train splits of synth_arith and synth_units, then searches on the same tasks' held-out
              items (valid for the search, test scored once) by the untrained and the trained meta-agent,
              3 seeds each
  small       the same at a reduced size (what the slow test runs)
  qwen2.5-coder-7b
              the same loop with the paper's meta-agent: give --config.meta_agent_path=<local
              Qwen2.5-Coder-7B-Instruct directory>; LoRA RLAO on one 80 GB GPU

A real executor instead of the simulated one is one more flag: `--config.executor_base_url=<OpenAI-compatible
/v1 URL> --config.executor_model=gpt-4o-mini` (the key is read from $OPENAI_API_KEY, or the variable named by
`executor_api_key_env`). The config is locked: a mistyped key is an error.
"""
from __future__ import annotations

import ml_collections

from w4s_jax.cli.common import sibling_config

PRESETS = ("default", "small", "qwen2.5-coder-7b")


def _sibling(name: str):
    return sibling_config(__file__, name)


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    preset = preset or "default"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    from w4s_jax.metaagent.config import tiny_meta_agent_config

    c = ml_collections.ConfigDict()
    c.preset = preset
    c.workdir = "runs/quickstart"
    c.seed = 0
    c.progress = True
    c.cache_dir = ""                 # tiny meta-agent cache ($W4S_CACHE_DIR or ~/.cache/w4s_jax when empty)
    c.meta_agent_path = ""           # use this HF dir / policy export instead of building the tiny meta-agent
    c.meta_agent = tiny_meta_agent_config()
    c.train_tasks = "synth_arith,synth_units"   # RLAO collects on these tasks' train split
    c.eval_tasks = "synth_arith,synth_units"    # searched on valid, scored once on test (items RLAO never saw)
    c.eval_seeds = 3
    c.executor_base_url = ""         # an OpenAI-compatible endpoint; empty = start the simulated executor
    c.executor_model = "sim-strong"
    c.executor_api_key_env = "OPENAI_API_KEY"   # read for a non-local endpoint
    c.executor_latency_s = 0.0       # the simulated executor's added latency per request

    r = _sibling("rlao").get_config("tiny")
    r.unlock()
    r.rounds, r.steps_per_round, r.train_on = 3, 30, "all"
    col = r.collect
    col.episodes, col.turns, col.candidates, col.eval_items = 3, 3, 4, 24   # episodes per task
    col.repairs, col.window, col.examples = 1, 2, "cot"
    col.meta_agent.temperature, col.meta_agent.max_tokens = 0.8, 400
    col.sandbox.pool_size = 8
    t = r.train
    t.batch_size, t.log_every = 8, 10
    t.optim.lr, t.optim.warmup_steps = 1e-3, 5
    # the paper's tau, weights normalised to mean 1 per batch: the step size stays put whatever the rewards
    t.objective.rwr.tau, t.objective.rwr.self_normalize = 0.4, True
    # a windowed state (<= ~210 tokens, see metaagent/tokenizer.py) and a reply (max_tokens 400): one length
    # bucket, and a loss buffer that holds any batch's action tokens (8 x 400), so the step compiles once
    t.data.max_len, t.data.min_bucket, t.data.keep_head, t.data.min_loss_cap = 640, 640, 128, 4096
    t.checkpoint.interval = 30
    t.mesh.devices = 1
    c.rlao = r

    s = _sibling("optimize").get_config()
    s.unlock()
    s.turns, s.candidates, s.eval_items, s.episodes = 4, 2, 48, 1
    s.repairs, s.window, s.examples = 1, 2, "cot"
    s.executor.max_concurrency = 256
    s.meta_agent.temperature, s.meta_agent.max_tokens = 0.8, 400
    s.sandbox.pool_size = 8
    c.search = s

    if preset == "qwen2.5-coder-7b":
        # the same loop with the paper's meta-agent: give --config.meta_agent_path (a local checkout of
        # Qwen/Qwen2.5-Coder-7B-Instruct); LoRA training on one 80 GB GPU; longer states and replies
        big = _sibling("train").get_config("qwen2.5-coder-7b-lora-1gpu")
        big.unlock()
        big.batch_size, big.log_every, big.checkpoint.interval = t.batch_size, t.log_every, r.steps_per_round
        big.optim.warmup_steps = t.optim.warmup_steps
        big.data.max_len, big.data.min_bucket = 8192, 1024
        r.train = big
        col.meta_agent.max_tokens = s.meta_agent.max_tokens = 2048
    if preset == "small":
        c.eval_seeds = 2
        r.rounds, r.steps_per_round = 2, 8
        col.episodes, col.turns, col.candidates, col.eval_items = 1, 2, 2, 8
        s.turns, s.candidates, s.eval_items = 2, 2, 8
    c.lock()
    return c

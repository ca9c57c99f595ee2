"""launch/compare_objectives.py: train one meta-agent per RL objective on the same trajectories and compare
them on the same held-out searches over seeds. `--config=configs/compare_objectives.py:<preset>`:

  tiny        (default) the embedded setting: simulated executor, the tiny meta-agent (cached) collects the
              trajectories on synth_arith's train split; searches on synth_arith and synth_units, 3 seeds
  small       the same at a reduced size (what the slow test runs)
  paper-7b    at scale: your trajectory files (data_path), Qwen2.5-Coder-7B-Instruct (initial_policy) LoRA on
              one 80 GB GPU, searches through a real OpenAI-compatible executor (search.executor.base_url)

`objectives` empty = every registered objective (w4s_jax.train.objectives.names()).
"""
from __future__ import annotations

import ml_collections

from w4s_jax.cli.common import sibling_config

PRESETS = ("tiny", "small", "paper-7b")


def _sibling(name: str):
    return sibling_config(__file__, name)


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    preset = preset or "tiny"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    q = _sibling("quickstart").get_config("small" if preset == "small" else "default")
    q.unlock()
    c = ml_collections.ConfigDict()
    c.preset = preset
    c.workdir = "runs/compare_objectives"
    c.seed = 0
    c.progress = True
    c.objectives = ""              # comma-separated; empty = all registered objectives
    c.data_path = ""               # trajectory file/glob; empty = collect them here with initial_policy
    c.initial_policy = ""          # the meta-agent every objective starts from; empty = the tiny meta-agent
    c.cache_dir, c.meta_agent_path, c.meta_agent = q.cache_dir, q.meta_agent_path, q.meta_agent
    c.sim_tasks = "synth_arith,synth_units"   # simulated executor for these tasks; empty = use a real endpoint
    c.executor_model = q.executor_model
    c.executor_api_key_env = q.executor_api_key_env
    c.eval_tasks, c.eval_seeds = q.eval_tasks, q.eval_seeds
    c.collect = q.rlao.collect
    c.collect.task = q.train_tasks
    c.collect.episodes = 2 * q.rlao.collect.episodes   # one round's worth of RLAO data, twice
    c.train = q.rlao.train
    c.train.total_steps = 2 * q.rlao.steps_per_round
    c.search = q.search
    if preset == "paper-7b":
        c.sim_tasks = ""
        c.executor_model = "gpt-4o-mini"
        c.eval_tasks, c.eval_seeds = "gsm_hard", 3
        c.search = _sibling("optimize").get_config("paper-gpt-4o-mini")
        c.search.unlock()
        c.search.meta_agent.base_url = ""
        c.train = _sibling("train").get_config("qwen2.5-coder-7b-lora-1gpu")
        c.train.unlock()
        c.train.total_steps = 300
    c.lock()
    return c

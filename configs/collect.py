"""Collection config: `--config=configs/collect.py:<preset>` with presets

  (none)                    every key below; executor.base_url and meta_agent.base_url must be given
  paper-gpt-4o-mini         the paper's setting: executor gpt-4o-mini through the OpenAI API (OPENAI_API_KEY),
                            meta-agent Qwen2.5-Coder-7B-Instruct served from an HF directory on this machine
                            (`python -m w4s_jax.serve --model=DIR --port=8000`, or any vLLM/SGLang server)
  paper-gpt-3.5-turbo       the same with gpt-3.5-turbo as executor

Episodes are tasks x `episodes` seeds; the environment's items are a fixed, seeded sample of `eval_items`
items of each task's train split (never valid or test). The config is locked: a mistyped key is an error.
"""
from __future__ import annotations

import ml_collections

from w4s_jax.rollout.config import paper_preset, rollout_base

PRESETS = ("paper-gpt-4o-mini", "paper-gpt-3.5-turbo")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    c = rollout_base()
    c.split = "train"           # collection samples the train split (fixed: never valid or test)
    c.eval_items = 32           # items of the train sample each workflow is evaluated on
    c.episodes = 2              # seeds per task
    c.shard = "0/1"             # i/n: this machine runs every n-th episode and writes its own file
    preset = preset or ""
    if preset == "paper-gpt-4o-mini":
        paper_preset(c, "gpt-4o-mini")
    elif preset == "paper-gpt-3.5-turbo":
        paper_preset(c, "gpt-3.5-turbo")
    elif preset:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    c.preset = preset
    return c

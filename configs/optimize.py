"""Optimisation config: `--config=configs/optimize.py:<preset>`: T turns of workflow design on one task's
valid split with a given meta-agent, then the workflow chosen by validation is scored once on test.

  (none)                    every key below; executor.base_url and meta_agent.base_url must be given
  paper-gpt-4o-mini         executor gpt-4o-mini through the OpenAI API (OPENAI_API_KEY), meta-agent served
                            from an HF directory at 127.0.0.1:8000 (`python -m w4s_jax.serve --model=DIR`)
  paper-gpt-3.5-turbo       the same with gpt-3.5-turbo as executor
  adas-gpt-4o               an untrained, ADAS-style meta-agent: GPT-4o writes the workflows

The config is locked: a mistyped key is an error.
"""
from __future__ import annotations

import ml_collections

from w4s_jax.rollout.config import paper_preset, rollout_base

PRESETS = ("paper-gpt-4o-mini", "paper-gpt-3.5-turbo", "adas-gpt-4o")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    c = rollout_base()
    c.workdir = "runs/optimize"
    c.split = "valid"           # the search sees the valid split only; test is scored once at the end
    c.eval_items = 0            # 0 = the whole valid split (fixed, as in the paper)
    c.episodes = 1              # independent searches; the best workflow over all of them is kept
    c.turns = 10
    c.label = ""                # the meta-agent's name in summary.json (default: its model id)
    preset = preset or ""
    if preset == "paper-gpt-4o-mini":
        paper_preset(c, "gpt-4o-mini")
    elif preset == "paper-gpt-3.5-turbo":
        paper_preset(c, "gpt-3.5-turbo")
    elif preset == "adas-gpt-4o":
        paper_preset(c, "gpt-4o-mini")
        c.meta_agent.base_url = "https://api.openai.com/v1"
        c.meta_agent.model = "gpt-4o"
        c.meta_agent.api_key_env = "OPENAI_API_KEY"
    elif preset:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    c.preset = preset
    return c

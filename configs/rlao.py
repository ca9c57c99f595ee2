"""Iterated RLAO config: `--config=configs/rlao.py:<preset>`; the collector's keys live under `collect.`
and the trainer's under `train.` (see configs/collect.py and configs/train.py), plus `rounds`.

  tiny                 CPU: the trainer's tiny preset; give initial_policy (an HF dir or policy export) and
                       collect.executor.base_url
  paper-gpt-4o-mini    executor gpt-4o-mini via the OpenAI API, Qwen2.5-Coder-7B-Instruct LoRA on one 80 GB GPU
                       (set train.model.path to the checkpoint directory)

The config is locked: a mistyped key is an error.
"""
from __future__ import annotations

import ml_collections

from w4s_jax.cli.common import sibling_config

PRESETS = ("tiny", "paper-gpt-4o-mini")


def _sibling(name: str):
    return sibling_config(__file__, name)


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    preset = preset or "tiny"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.preset = preset
    c.workdir = "runs/rlao"
    c.seed = 0
    c.rounds = 2
    c.steps_per_round = 20      # optimizer steps per round (the schedule spans rounds x steps_per_round)
    c.train_on = "all"          # all: every round's trajectories so far; last: the last round's only
    c.initial_policy = ""       # round 0's meta-agent (an HF dir or a policy export); empty = train.model.path
    c.progress = True
    if preset == "tiny":
        c.collect = _sibling("collect").get_config()
        c.train = _sibling("train").get_config("tiny")
    else:
        c.collect = _sibling("collect").get_config("paper-gpt-4o-mini")
        c.train = _sibling("train").get_config("qwen2.5-coder-7b-lora-1gpu")
        c.steps_per_round = 100
    c.collect.unlock()
    c.collect.meta_agent.base_url = ""   # each round serves its own policy (meta_agent.path)
    c.collect.lock()
    return c

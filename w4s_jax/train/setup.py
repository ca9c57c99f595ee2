"""Building a run from its config: validation, mesh, model, tokenizer, data, objective.

Every check here fails with one message naming the config key, so a typo or a bad value is caught before
any compile or checkpoint write.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import jax
import jax.numpy as jnp

from w4s_jax.models import REMAT_POLICIES, ConfigError, get_preset, init_model, load_pretrained, make_mesh
from w4s_jax.models.sharding import DEFAULT_RULES
from w4s_jax.train import distributed, objectives
from w4s_jax.train.data import LOSS_ON, TRUNCATE, examples_from_records, preference_pairs, split_by_episode
from w4s_jax.train.lora import INPUT_DIMS
from w4s_jax.trajectories import read_trajectories

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")


def _need(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"config {key}: {msg}")


def validate_config(cfg) -> None:
    _need(bool(cfg.workdir), "workdir", "must be set")
    _need(cfg.total_steps > 0, "total_steps", f"must be positive, got {cfg.total_steps}")
    _need(cfg.stop_after >= 0, "stop_after", f"must be >= 0, got {cfg.stop_after}")
    _need(cfg.batch_size > 0, "batch_size", f"must be positive, got {cfg.batch_size}")
    _need(cfg.accum_steps > 0 and cfg.batch_size % cfg.accum_steps == 0, "accum_steps",
          f"must divide batch_size={cfg.batch_size}, got {cfg.accum_steps}")
    _need(cfg.objective.name in objectives.names(), "objective.name",
          f"unknown objective {cfg.objective.name!r}; known: {objectives.names()}")
    _need(cfg.model.dtype in DTYPES, "model.dtype", f"must be one of {DTYPES}, got {cfg.model.dtype!r}")
    _need(cfg.model.param_dtype in ("",) + DTYPES, "model.param_dtype", f"must be one of {DTYPES} or empty")
    _need(cfg.optim.state_dtype in ("",) + DTYPES, "optim.state_dtype", f"must be one of {DTYPES} or empty")
    _need(cfg.model.remat in REMAT_POLICIES, "model.remat",
          f"unknown policy {cfg.model.remat!r}; known: {sorted(REMAT_POLICIES)}")
    _need(bool(cfg.model.path) or bool(cfg.model.preset), "model", "set model.path or model.preset")
    if cfg.model.path:
        _need(os.path.isdir(cfg.model.path), "model.path", f"{cfg.model.path!r} is not a directory")
    _need(cfg.data.loss_on in LOSS_ON, "data.loss_on", f"must be one of {LOSS_ON}, got {cfg.data.loss_on!r}")
    _need(cfg.data.truncate in TRUNCATE, "data.truncate", f"must be one of {TRUNCATE}, got {cfg.data.truncate!r}")
    _need(cfg.data.max_len > 1, "data.max_len", f"must be > 1, got {cfg.data.max_len}")
    _need(bool(cfg.data.path) or cfg.data.synthetic, "data.path", "set a trajectory file/glob (or data.synthetic)")
    _need(cfg.optim.lr >= 0, "optim.lr", f"must be >= 0, got {cfg.optim.lr}")
    _need(cfg.accum_dtype in ("",) + DTYPES, "accum_dtype", f"must be one of {DTYPES} or empty")
    _need(0.0 <= cfg.data.eval_fraction < 1.0, "data.eval_fraction", f"must be in [0, 1), got {cfg.data.eval_fraction}")
    _need(not (cfg.data.eval_path and cfg.data.eval_fraction), "data.eval_path",
          "set data.eval_path or data.eval_fraction, not both")
    _need(cfg.eval_every >= 0, "eval_every", f"must be >= 0, got {cfg.eval_every}")
    if cfg.lora.enabled:
        bad = [t for t in cfg.lora.targets if t not in INPUT_DIMS]
        _need(not bad and len(cfg.lora.targets) > 0, "lora.targets",
              f"{bad or '(empty)'} not among {sorted(INPUT_DIMS)}")
        _need(cfg.lora.rank > 0, "lora.rank", f"must be positive, got {cfg.lora.rank}")
        if cfg.lora.init_from:
            _need(os.path.isdir(cfg.lora.init_from), "lora.init_from",
                  f"{cfg.lora.init_from!r} is not a directory (a PEFT adapter: adapter_config.json + "
                  f"adapter_model.safetensors)")
    else:
        _need(not cfg.lora.init_from, "lora.init_from", "needs lora.enabled=True")
    try:
        objectives.from_config(cfg.objective)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config objective.{cfg.objective.name}: {e}") from None


def build_mesh(cfg):
    try:
        devices = jax.devices()[:cfg.mesh.devices] if cfg.mesh.devices else None
        return make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor, devices=devices)
    except ValueError as e:
        raise ConfigError(f"config mesh: {e}") from None


def build_model(cfg, mesh):
    dtype = jnp.dtype(cfg.model.dtype)
    param_dtype = jnp.dtype(cfg.model.param_dtype or cfg.model.dtype)
    if cfg.model.path:
        return load_pretrained(cfg.model.path, dtype=dtype, param_dtype=param_dtype, mesh=mesh,
                               rules=DEFAULT_RULES, remat=cfg.model.remat, attn_impl=cfg.model.attn_impl)
    return init_model(get_preset(cfg.model.preset), seed=cfg.seed, dtype=dtype, param_dtype=param_dtype,
                      mesh=mesh, rules=DEFAULT_RULES, remat=cfg.model.remat, attn_impl=cfg.model.attn_impl)


def build_tokenizer(cfg):
    from transformers import AutoTokenizer

    if cfg.tokenizer.path:
        return AutoTokenizer.from_pretrained(cfg.tokenizer.path)
    if cfg.model.path:
        return AutoTokenizer.from_pretrained(cfg.model.path)
    if cfg.data.synthetic:
        from w4s_jax.train.synthetic import build_tiny_tokenizer

        return build_tiny_tokenizer(os.path.join(cfg.workdir, "tokenizer"), save=jax.process_index() == 0)
    raise ConfigError("config tokenizer.path: no tokenizer (set tokenizer.path or model.path)")


def data_path(cfg) -> str:
    if cfg.data.path:
        return cfg.data.path
    from w4s_jax.train.synthetic import write_synthetic_trajectories

    path = os.path.join(cfg.workdir, "synthetic_trajectories.jsonl")
    if jax.process_index() == 0 and not os.path.exists(path):
        write_synthetic_trajectories(path, seed=cfg.seed)
    distributed.sync("synthetic-trajectories")  # the other hosts read what process 0 wrote
    return path


@dataclasses.dataclass
class Data:
    examples: list
    pairs: list | None
    report: dict
    held_out: list | None = None  # examples of held-out episodes (data.eval_path / data.eval_fraction)


def _held_out_records(cfg, records: list, report: dict) -> tuple[list, list | None]:
    """(training records, held-out records or None), split by episode, never by line."""
    if cfg.data.eval_fraction:
        try:
            train, held = split_by_episode(records, cfg.data.eval_fraction)
        except ValueError as e:
            raise ConfigError(f"config data.eval_fraction: {e}") from None
    elif cfg.data.eval_path:
        train, held = records, read_trajectories(cfg.data.eval_path, {})
        shared = sorted({(r.run_id, r.episode_id) for r in held} & {(r.run_id, r.episode_id) for r in train})
        if shared:
            raise ConfigError(f"config data.eval_path: {len(shared)} episode(s) of {cfg.data.eval_path!r} are also in "
                              f"the training data, e.g. run_id={shared[0][0]!r} episode_id={shared[0][1]!r}")
    else:
        return records, None
    report["eval_records"] = len(held)
    report["eval_episodes"] = len({r.episode_id for r in held})
    report["train_episodes"] = len({r.episode_id for r in train})
    return train, held


def build_data(cfg, tokenizer, objective, vocab_size: int) -> Data:
    report: dict = {}
    path = data_path(cfg)
    records = read_trajectories(path, report)
    report["records"] = len(records)
    records, held = _held_out_records(cfg, records, report)
    common = dict(max_len=cfg.data.max_len, truncate=cfg.data.truncate, keep_head=cfg.data.keep_head,
                  include_failed=cfg.data.include_failed, eot_token=cfg.tokenizer.eot_token)
    examples = examples_from_records(records, tokenizer, loss_on=cfg.data.loss_on, keep=objective.keep,
                                     report=report, source=str(path), **common)
    held_out = None
    if held is not None:
        # every held-out candidate, scored on its action tokens only (see evaluation.py)
        held_out = examples_from_records(held, tokenizer, loss_on="action", report={}, **common,
                                         source=f"held-out episodes of {cfg.data.eval_path or path}")
        report["eval_examples"] = len(held_out)
    top = max(int(e.ids.max()) for e in examples + (held_out or []))
    if top >= vocab_size:
        raise ConfigError(f"config tokenizer: token id {top} does not fit the model's vocabulary ({vocab_size})")
    pairs = None
    if objective.pairwise:
        pairs = preference_pairs(examples, margin=objective.margin, max_pairs_per_state=objective.max_pairs_per_state)
        report["pairs"] = len(pairs)
        if not pairs:
            raise ConfigError("objective dpo: no preference pairs (no state has candidates with different "
                              "rewards) in the data")
    return Data(examples, pairs, report, held_out)

"""Policy exports the rollout service loads: `<workdir>/policy/<step>/` holds the inference parameters only
(LoRA merged) as an Orbax PyTree, the model's HF `config.json`, the tokenizer files with the chat template,
and `policy.json` (step, format, dtype); `load_policy` reads one back onto any mesh. `save_pretrained`
(Hugging Face layout) is the other export, for transformers / vLLM / SGLang.

An export is written under a hidden temporary name next to its final place and renamed when complete, so a
reader (the serving process hot-reloading new steps) sees a whole step or none. `policy.json` is written
last, inside the temporary directory: a step directory without it is incomplete (exports written before
the rename existed also wrote it last).
"""
from __future__ import annotations

import json
import logging
import os
import shutil

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from w4s_jax.models import ModelConfig
from w4s_jax.models.build import init_model
from w4s_jax.models.safetensors_io import CheckpointError
from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, state_shardings
from w4s_jax.train.distributed import sync

log = logging.getLogger(__name__)

POLICY_FILE = "policy.json"
# What AutoTokenizer reads (any subset); *.jinja chat templates are copied as well.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.json")


def has_tokenizer(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer_config.json",
                                                                 "tokenizer.model", "vocab.json"))


def _copy_tokenizer_files(src: str, dst: str) -> None:
    names = [f for f in os.listdir(src) if f in TOKENIZER_FILES or f.endswith(".jinja")]
    for f in names:
        shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))


def trainer_tokenizer_dir(workdir: str) -> str | None:
    """The tokenizer directory a trainer run in `workdir` used, from its resolved `config.json`, exactly as
    `setup.build_tokenizer` picks it: tokenizer.path, else model.path, else `<workdir>/tokenizer` (the tiny
    preset's local tokenizer). None when none of them holds tokenizer files."""
    cands = []
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            cfg = json.load(f)
        cands += [cfg.get("tokenizer", {}).get("path") or "", cfg.get("model", {}).get("path") or ""]
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    cands.append(os.path.join(workdir, "tokenizer"))
    for c in cands:
        if c and os.path.isdir(c) and has_tokenizer(c):
            return c
    return None


def _save_tokenizer(tokenizer, dst: str) -> bool:
    if tokenizer is None:
        return False
    if isinstance(tokenizer, (str, os.PathLike)):
        src = os.fspath(tokenizer)
        if not (os.path.isdir(src) and has_tokenizer(src)):
            raise CheckpointError(f"export_policy: tokenizer directory {src!r} holds no tokenizer files")
        _copy_tokenizer_files(src, dst)
    else:
        tokenizer.save_pretrained(dst)
    return True


def export_policy(model, path: str, *, step: int, tokenizer=None) -> str:
    """Write the model's parameters, config and tokenizer to `path`, atomically (a temporary sibling renamed
    into place; an older export at `path` is replaced). `tokenizer` is a tokenizer object or a directory
    holding one; None = the tokenizer of the trainer run whose workdir holds `path` (`<workdir>/policy/<step>`,
    see `trainer_tokenizer_dir`), with a warning if there is none. All processes call this (the parameters
    are saved collectively); process 0 writes the rest and renames."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    tmp = os.path.join(parent, f".{name}.partial")
    lead = jax.process_index() == 0
    if lead:
        os.makedirs(parent, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # left by a crash in the middle of an earlier export
        os.makedirs(tmp)
    sync(f"export-{name}-start")
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(os.path.join(tmp, "params"), params, force=True)
    if lead:
        if tokenizer is None:
            tokenizer = trainer_tokenizer_dir(os.path.dirname(parent))
        if not _save_tokenizer(tokenizer, tmp):
            log.warning("export_policy: no tokenizer for %s; serving it will need --tokenizer", path)
        dtype = str(jnp.dtype(model.param_dtype))
        _write_json(os.path.join(tmp, "config.json"), model.config.to_hf_dict(torch_dtype=dtype))
        _write_json(os.path.join(tmp, POLICY_FILE), {"step": step, "format": "orbax-params", "param_dtype": dtype})
        old = None
        if os.path.exists(path):
            old = os.path.join(parent, f".{name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(path, old)
        os.rename(tmp, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    sync(f"export-{name}-done")
    return path


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def read_policy_info(path: str) -> dict:
    """`policy.json` of an export (CheckpointError naming the file when it is missing or unreadable)."""
    file = os.path.join(path, POLICY_FILE)
    try:
        with open(file) as f:
            info = json.load(f)
        int(info["step"]), str(info["param_dtype"])
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not a complete policy export (no {POLICY_FILE})") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{file}: unreadable policy description ({e!r})") from None
    return info


def load_policy(path: str, *, dtype=jnp.bfloat16, param_dtype=None, mesh=None, rules=DEFAULT_RULES,
                remat: str = "none"):
    """A Qwen2 model from a policy export, its parameters restored straight into the mesh's shardings."""
    path = os.path.abspath(path)
    stored = read_policy_info(path)["param_dtype"]
    cfg = ModelConfig.from_json_file(os.path.join(path, "config.json"))
    param_dtype = jnp.dtype(param_dtype or stored)
    abstract = nnx.eval_shape(lambda: init_model(cfg, dtype=dtype, param_dtype=param_dtype, mesh=mesh,
                                                  rules=rules, remat=remat))
    graphdef, state = nnx.split(abstract)
    sharding = ShardingRules(mesh, tuple(rules)) if mesh is not None else None
    if sharding is not None:
        shardings = nnx.to_pure_dict(state_shardings(state, sharding))
    else:
        dev = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: dev, nnx.to_pure_dict(state))
    target = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, param_dtype, sharding=s),
                          nnx.to_pure_dict(state), shardings)
    params_dir = os.path.join(path, "params")
    if not os.path.isdir(params_dir):
        raise CheckpointError(f"{path}: policy export has no params/ directory")
    try:
        with ocp.StandardCheckpointer() as ckpt:
            params = ckpt.restore(params_dir, target)
    except Exception as e:  # Orbax raises many types (ValueError, FileNotFoundError, tensorstore errors)
        raise CheckpointError(f"{params_dir}: cannot restore the parameters ({type(e).__name__}: "
                              f"{str(e)[:300]})") from None
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)

"""The reproducibility record of a rollout run, and the guard against resuming with another config.

`<workdir>/run_info.json` says exactly what produced a trajectory file: the resolved config, seeds, the
git commit (and whether the tree was dirty), package versions, checksums of the data files, the
environment's item ids, the executor and meta-agent model ids and the cache paths.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile

# The keys that decide what a run's trajectories are. Resuming with any of them changed would mix two
# experiments in one file; budget, concurrency, episodes and turns may change (to extend a run).
IDENTITY_KEYS = ("task", "data_dir", "eval_items", "split", "seed", "candidates", "repairs", "window",
                 "feedback_cases", "examples", "reward", "executor.model", "meta_agent.model",
                 "meta_agent.path", "meta_agent.temperature", "meta_agent.max_tokens")
PACKAGES = ("w4s-jax", "openai", "aiohttp", "datasets", "math-verify", "numpy", "jax", "flax")


def write_json_atomic(path: str, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, default=str))


def write_text_atomic(path: str, text: str) -> None:
    """Write `text` to `path` whole or not at all (a temporary file renamed into place)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _get(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if part not in node:
            return None
        node = node[part]
    return node.to_dict() if hasattr(node, "to_dict") else node


def identity(cfg) -> dict:
    return {k: _get(cfg, k) for k in IDENTITY_KEYS if _get(cfg, k) is not None}


def check_resume(cfg, workdir: str) -> str:
    """The run id (config `run_id`, or a hash of the identity keys); refuses a workdir made by another config."""
    ident = identity(cfg)
    run_id = cfg.get("run_id") or "run-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(workdir, "run_info.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read the record of the earlier run in this workdir ({e})") from None
        old_ident = old.get("identity", {})
        changed = sorted(k for k in set(ident) | set(old_ident) if ident.get(k) != old_ident.get(k))
        if changed:
            raise ValueError(f"workdir {workdir} holds a run with other settings ({', '.join(changed)} differ: "
                             f"was {[old_ident.get(k) for k in changed]}, now {[ident.get(k) for k in changed]}); "
                             "use a new workdir, or the same settings to resume")
    return run_id


def _sha256(path: str) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _git() -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}
    return {"commit": commit or None, "dirty": bool(dirty)} if commit else {"commit": None}


def _versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def write_run_info(cfg, workdir: str, *, run_id: str, tasks: list, env_items: dict, executor, meta_agent,
                   trajectory_path: str) -> dict:
    data_files = {}
    for t in tasks:
        for f in (getattr(t, "source", None) or {}).get("files", []) or []:
            data_files[str(f)] = _sha256(str(f))
    info = {
        "run_id": run_id, "identity": identity(cfg), "config": cfg.to_dict(),
        "git": _git(), "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": _versions(), "data_files": data_files,
        "tasks": {t.name: {"source": getattr(t, "source", None),
                           "env_item_ids": [str(it.id) for it in env_items.get(t.name, [])]} for t in tasks},
        "executor": {"base_url": executor.base_url, "model": executor.model,
                     "cache_path": executor.cache.path if getattr(executor, "cache", None) is not None
                     and hasattr(executor.cache, "path") else None},
        "meta_agent": {"model": meta_agent.model_id},
        "trajectories": trajectory_path,
    }
    write_json_atomic(os.path.join(workdir, "run_info.json"), info)
    return info

"""Task registry: `get(name, data_dir=None)` and `names()`.

Each name maps to "module:function" of a factory `f(data_dir: str | None) -> Task`, imported on first
use so that asking for one benchmark never loads (or downloads) another. `data_dir` (or, when it is
None, `$W4S_DATA_DIR`) is where the factory looks for local files first.
"""
from __future__ import annotations

import importlib
import os

from .base import Task

# name -> "module:factory" (module relative to w4s_jax.tasks). Add a line per registered task.
_FACTORIES: dict[str, str] = {
    "humaneval": "code:humaneval",
    "mbpp": "code:mbpp",
}

_cache: dict[tuple[str, str | None], Task] = {}


def register(name: str, target: str) -> None:
    """Register `name` -> "module:factory"; re-registering the same name with another target is an error."""
    if name in _FACTORIES and _FACTORIES[name] != target:
        raise ValueError(f"task {name!r} is already registered as {_FACTORIES[name]!r}")
    _FACTORIES[name] = target


def names() -> list[str]:
    return sorted(_FACTORIES)


def resolve_data_dir(data_dir: str | None) -> str | None:
    d = data_dir if data_dir else os.environ.get("W4S_DATA_DIR") or None
    return os.path.expanduser(d) if d else None


def get(name: str, data_dir: str | None = None) -> Task:
    if name not in _FACTORIES:
        raise KeyError(f"unknown task {name!r}; registered tasks: {', '.join(names())}")
    d = resolve_data_dir(data_dir)
    key = (name, d)
    if key not in _cache:
        module, func = _FACTORIES[name].split(":")
        factory = getattr(importlib.import_module(f"{__package__}.{module}"), func)
        _cache[key] = factory(d)
    return _cache[key]

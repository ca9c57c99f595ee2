"""Task registry: `get(name, data_dir=None)` and `names()`.

Each name maps to "module:function" of a factory `f(data_dir: str | None) -> Task`, imported on first
use so that asking for one benchmark never loads (or downloads) another. `data_dir` (or, when it is
None, `$W4S_DATA_DIR`) is where the factory looks for local files first.

Your own tasks: `register("mine", "my_package.my_module:make_task")` (or a factory callable), or name the
factory directly wherever a task name is taken: `get("my_package.my_module:make_task")`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

from .base import Task

# name -> "module:factory" (module relative to w4s_jax.tasks). Add a line per registered task.
_FACTORIES: dict[str, object] = {
    "humaneval": "code:humaneval",
    "mbpp": "code:mbpp",
    "synth_arith": "synthetic:synth_arith",
    "synth_units": "synthetic:synth_units",
    "gsm8k": "gsm:gsm8k", "gsm_hard": "gsm:gsm_hard", "svamp": "gsm:svamp", "gsm_plus": "gsm:gsm_plus",
    "mgsm": "gsm:mgsm", "math": "competition_math:competition_math", "drop": "drop:drop",
    "mmlu_pro": "multiple_choice:mmlu_pro", "gpqa": "multiple_choice:gpqa",
}

_cache: dict[tuple[str, str | None], Task] = {}


def register(name: str, target) -> None:
    """Register `name` -> "module:factory" (module relative to w4s_jax.tasks, or absolute) or a factory
    callable; re-registering the same name with another target is an error."""
    if name in _FACTORIES and _FACTORIES[name] != target:
        raise ValueError(f"task {name!r} is already registered as {_FACTORIES[name]!r}")
    _FACTORIES[name] = target


def names() -> list[str]:
    return sorted(_FACTORIES)


def resolve_data_dir(data_dir: str | None) -> str | None:
    d = data_dir if data_dir else os.environ.get("W4S_DATA_DIR") or None
    return os.path.expanduser(d) if d else None


def get(name: str, data_dir: str | None = None) -> Task:
    target = _FACTORIES.get(name)
    if target is None and ":" in name:
        target = name
    if target is None:
        raise KeyError(f"unknown task {name!r}; registered tasks: {', '.join(names())} "
                       "(or give a factory as 'package.module:function')")
    d = resolve_data_dir(data_dir)
    key = (name, d)
    if key not in _cache:
        _cache[key] = _factory(name, target)(d)
    return _cache[key]


def _factory(name: str, target):
    if callable(target):
        return target
    module, _, func = str(target).partition(":")
    relative = f"{__package__}.{module}"
    try:
        found = importlib.util.find_spec(relative) is not None
    except ModuleNotFoundError:
        found = False
    try:
        mod = importlib.import_module(relative if found else module)
        return getattr(mod, func)
    except (ImportError, AttributeError) as e:
        raise KeyError(f"task {name!r}: cannot load its factory {target!r}: {e}") from None

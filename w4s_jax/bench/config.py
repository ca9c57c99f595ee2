"""What every launch/bench_*.py shares: its config (configs/bench_<x>.py builds it with `bench_config`) and
its results file.

Keys of every benchmark: `preset`, `workdir` (the results go to <workdir>/<name>.json and are printed),
`seed`, `reps` (timed repetitions: min/median/max are reported). Where a benchmark has both, `mode` is
"reference" (ours against transformers/PyTorch in the same run, on the CPU) or "accelerator" (ours alone
on a GPU/TPU: MFU or the memory-bandwidth fraction, peak memory); `model` names a model preset
(w4s_jax/models/presets.py).
"""
from __future__ import annotations

import inspect
import json
import os
from typing import Callable

import ml_collections

from w4s_jax.bench.timing import LoadWatch

SHARED_KEYS = ("name", "preset", "workdir", "mode", "seed")  # seed: passed where the function takes one


def bench_config(name: str, presets: dict[str, dict], preset: str | None) -> ml_collections.ConfigDict:
    """The shared keys plus the chosen preset's (the first preset is the default)."""
    preset = preset or next(iter(presets))
    if preset not in presets:
        raise ValueError(f"configs/{name}.py: unknown preset {preset!r}; known: {list(presets)}")
    return ml_collections.ConfigDict({"name": name, "preset": preset, "workdir": "runs/bench", "seed": 0, "reps": 3,
                                      **presets[preset]})


def write_results(config, results: dict, log=print) -> dict:
    """<workdir>/<name>.json: the resolved config and the results; also printed."""
    out = {"config": config.to_dict(), **results}
    os.makedirs(config.workdir, exist_ok=True)
    path = os.path.join(config.workdir, f"{config.name}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2, default=str)
    log(json.dumps(out, default=str))
    log(f"results written to {path}")
    return out


def run_config(config, log=print, **by_mode: Callable[..., dict]) -> dict:
    """Run the function of `config.mode` (or the one function given) with the config's keys as its parameters
    (a key that it does not take is a mistake), mark the figures with the machine's load before and after,
    and write the results file."""
    fn = by_mode[config.mode] if "mode" in config else next(iter(by_mode.values()))
    params = inspect.signature(fn).parameters
    unused = [k for k in config if k not in params and k not in SHARED_KEYS]
    if unused:
        raise ValueError(f"configs/{config.name}.py: {fn.__name__} takes no {unused}")
    load = LoadWatch()
    results = fn(**{k: v for k, v in config.items() if k in params})
    results["load"] = load.finish(log)
    return write_results(config, results, log=log)

"""Run a benchmark the way launch/bench_<x>.py does: configs/bench_<x>.py's preset, overrides, main(config);
the results are read back from <workdir>/bench_<x>.json."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench_config(name: str, preset: str, **overrides):
    spec = importlib.util.spec_from_file_location(f"configs_{name}", REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(preset)
    config.update(overrides)
    return config


def run_bench(main, name: str, preset: str, workdir, **overrides) -> dict:
    config = bench_config(name, preset, workdir=str(workdir), **overrides)
    main(config)
    return json.loads((Path(workdir) / f"{name}.json").read_text())


def sleep_then_return(seconds: float, log=print) -> dict:
    """A benchmark function for tests of w4s_jax/bench/isolated.py."""
    import time

    log(f"sleeping {seconds} s")
    time.sleep(seconds)
    return {"slept_s": seconds}

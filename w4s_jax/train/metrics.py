"""Training metrics: JSONL and TensorBoard writers (MFU from w4s_jax/flops.py)."""
from __future__ import annotations

import json
import os

# The FLOP model and peak table live in w4s_jax/flops.py (shared with the benchmarks); the trainer's MFU uses them.
from w4s_jax.flops import peak_flops, step_flops  # noqa: F401


class MetricsWriter:
    """Appends one JSON object per logged step to <workdir>/metrics.jsonl and scalars to TensorBoard."""

    def __init__(self, workdir: str, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        self.f = open(os.path.join(workdir, "metrics.jsonl"), "a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in metrics.items()}
        self.f.write(json.dumps({"step": step, **clean}) + "\n")
        self.f.flush()
        if self.tb is not None:
            for k, v in clean.items():  # "eval/nll" keeps its own section; plain names go under train/
                self.tb.add_scalar(k if "/" in k else f"train/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self.f.close()
            if self.tb is not None:
                self.tb.close()

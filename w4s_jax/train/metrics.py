"""Training metrics: JSONL and TensorBoard writers, FLOP and MFU estimates."""
from __future__ import annotations

import json
import os

import jax

# dense bf16 peak FLOP/s per chip, by device_kind substring (first match wins)
PEAK_FLOPS = (
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5", 197e12), ("TPU v4", 275e12),
)


def peak_flops(device=None, override_tflops: float = 0.0) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    kind = str(getattr(device or jax.devices()[0], "device_kind", ""))
    for key, flops in PEAK_FLOPS:
        if key.lower() in kind.lower():
            return flops
    return None


def step_flops(cfg, *, tokens: float, loss_tokens: float, seq_len: int, lora: bool) -> float:
    """Model FLOPs of one train step. The trunk's matmuls cost 2 (forward) + 4 (backward) FLOPs per
    parameter per token, or 2 + 2 with LoRA (no gradients for the frozen weights); the output head runs
    only at loss tokens (6 per parameter); causal attention averages seq_len / 2 keys."""
    D, H, K, E, F, L = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size,
                        cfg.num_layers)
    trunk = L * (2 * D * H * E + 2 * D * K * E + 3 * D * F)
    per_param = 4 if lora else 6
    attention = L * 2 * 2 * H * E * (seq_len / 2)  # QK^T and PV, forward
    return per_param * trunk * tokens + 3 * attention * tokens + 6 * cfg.vocab_size * D * loss_tokens


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
            for k, v in clean.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self.f.close()
            if self.tb is not None:
                self.tb.close()

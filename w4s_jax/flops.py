"""The one model of work and of accelerator peaks: FLOPs of a train step, bytes a decode step must read, and
each card's dense bf16 peak and memory bandwidth. The trainer's MFU metric and every benchmark use it.

Counts are model FLOPs (what the maths needs), not hardware FLOPs: rematerialised forward passes are not
counted, so MFU is comparable across remat policies. No JAX import: the accelerator is named by its
`device_kind` string.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    kind: str             # substring of jax's device_kind, matched case-insensitively, first match wins
    bf16_tflops: float    # dense (no sparsity) bf16 matmul peak of one chip
    hbm_gbps: float       # memory bandwidth of one chip, GB/s


# Vendors' data sheets. More specific names come before the names they contain ("H100 PCIe" before "H100",
# "TPU v5 lite" (v5e) before "TPU v5" (v5p)).
ACCELERATORS = (
    Accelerator("H100 PCIe", 756.0, 2000.0),
    Accelerator("H100 NVL", 835.0, 3900.0),
    Accelerator("H100", 989.0, 3350.0),       # SXM: "NVIDIA H100 80GB HBM3"
    Accelerator("H200", 989.0, 4800.0),
    Accelerator("GH200", 989.0, 4000.0),
    Accelerator("B200", 2250.0, 8000.0),
    Accelerator("A100 80GB PCIe", 312.0, 1935.0),
    Accelerator("A100-SXM4-80GB", 312.0, 2039.0),
    Accelerator("A100", 312.0, 1555.0),       # 40 GB
    Accelerator("L40S", 362.0, 864.0),
    Accelerator("L4", 121.0, 300.0),
    Accelerator("TPU v6 lite", 918.0, 1640.0),
    Accelerator("TPU v6", 918.0, 1640.0),
    Accelerator("TPU v5 lite", 197.0, 819.0),
    Accelerator("TPU v5e", 197.0, 819.0),
    Accelerator("TPU v5", 459.0, 2765.0),     # v5p
    Accelerator("TPU v4", 275.0, 1200.0),
)


def accelerator(device_kind: str) -> Accelerator | None:
    """The table's entry for a device kind (e.g. "NVIDIA H100 80GB HBM3"), or None (CPUs, unknown cards)."""
    kind = device_kind.lower()
    for acc in ACCELERATORS:
        if acc.kind.lower() in kind:
            return acc
    return None


def device_kind(device=None) -> str:
    import jax

    return str(getattr(device or jax.devices()[0], "device_kind", ""))


def peak_flops(device=None, override_tflops: float = 0.0) -> float | None:
    """Peak FLOP/s of one device: `override_tflops` when given, else the table's entry, else None."""
    if override_tflops:
        return override_tflops * 1e12
    acc = accelerator(device_kind(device))
    return acc.bf16_tflops * 1e12 if acc else None


def peak_hbm_bytes_s(device=None, override_gbps: float = 0.0) -> float | None:
    """Memory bandwidth of one device in bytes/s, likewise."""
    if override_gbps:
        return override_gbps * 1e9
    acc = accelerator(device_kind(device))
    return acc.hbm_gbps * 1e9 if acc else None


def _trunk_matmul_params(cfg) -> int:
    D, H, K, E, F = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size
    return cfg.num_layers * (2 * D * H * E + 2 * D * K * E + 3 * D * F)  # q, o; k, v; gate, up, down


def step_flops(cfg, *, tokens: float, loss_tokens: float, seq_len: float, lora: bool = False) -> float:
    """Model FLOPs of one forward+backward over `tokens` tokens, `loss_tokens` of which reach the output head.

    A matmul costs 2 FLOPs per parameter per token forward and 4 backward (gradients of the activations and
    of the weight), or 2 backward for a frozen weight (LoRA: base and head frozen; the small adapters are
    not counted). The output head runs only at loss tokens (the target-token path; pass loss_tokens =
    tokens for full logits); the embedding lookup costs nothing. Causal attention: QK^T and PV over on
    average seq_len / 2 keys, forward once and backward twice (activation gradients are always needed).
    """
    per_param = 4 if lora else 6
    attention = cfg.num_layers * 2 * 2 * cfg.num_heads * cfg.head_dim * (seq_len / 2)
    head = cfg.vocab_size * cfg.hidden_size
    return per_param * _trunk_matmul_params(cfg) * tokens + 3 * attention * tokens + per_param * head * loss_tokens


def decode_bytes_per_step(cfg, *, rows: int, prompt_len: int, new_tokens: int, param_bytes: int,
                          cache_bytes: int) -> float:
    """Bytes one decode step must read, averaged over the steps: all weights once (the embedding table only
    when it doubles as the output head; otherwise just `rows` of it, which is negligible) plus the KV cache
    of the valid tokens. Divided by the memory bandwidth it is the roofline time of a step."""
    embed = cfg.vocab_size * cfg.hidden_size
    weights = (cfg.num_params() - (0 if cfg.tie_word_embeddings else embed)) * param_bytes
    avg_len = prompt_len + (new_tokens - 1) / 2
    kv = 2 * cfg.num_layers * rows * avg_len * cfg.num_kv_heads * cfg.head_dim * cache_bytes
    return weights + kv

"""Sampling-time placement of the model on a Mesh.

Training shards the embedding dimension of every weight over `fsdp` (ZeRO-3 style), which suits large
batches. A decode step touches every weight for a handful of tokens, so gathering fsdp shards each step
would cost more than the math: for sampling the weights are split over `tensor` only and replicated over
`data`/`fsdp`, which then carry the batch rows.
"""
from __future__ import annotations

from w4s_jax.models.build import shard_model
from w4s_jax.models.sharding import DEFAULT_RULES

SAMPLING_RULES = tuple((name, None) if name == "embed" else (name, axes) for name, axes in DEFAULT_RULES)


def shard_for_sampling(model, mesh, rules=SAMPLING_RULES):
    """The same parameters placed on `mesh` by the sampling rules (a new model object; `model` is unchanged)."""
    return shard_model(model, mesh, rules)

"""LoRA factors owned by the trainer: initialisation, logical axes (so they shard like their base weight),
and merging into the base weights for a policy export. `trainable.LoraTraining` puts them behind the
trainer's interface; `peft_io` reads and writes them as PEFT adapters.

For a stacked layer weight W [L, *in, *out] the factors are a [L, *in, r] and b [L, r, *out]; the model
uses W + scale * a @ b (scale = alpha / rank), merged one layer at a time inside its scan. b starts at
zero, so training starts exactly at the base policy.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.models.qwen2 import _layer_param_specs

# number of leading (input) dims of each projection, after the layers axis
INPUT_DIMS = {"q_proj": 1, "k_proj": 1, "v_proj": 1, "o_proj": 2, "gate_proj": 1, "up_proj": 1, "down_proj": 1}


def check_targets(targets) -> tuple[str, ...]:
    targets = tuple(targets)
    unknown = [t for t in targets if t not in INPUT_DIMS]
    if unknown or not targets:
        raise ValueError(f"LoRA target modules {unknown or '(none)'} are not among {sorted(INPUT_DIMS)}")
    return targets


def lora_axes(model_config, targets) -> dict[str, dict[str, tuple]]:
    specs = _layer_param_specs(model_config)
    out = {}
    for t in check_targets(targets):
        _, axes, _ = specs[t]
        k = INPUT_DIMS[t]
        out[t] = {"a": ("layers", *axes[:k], None), "b": ("layers", None, *axes[k:])}
    return out


def lora_shapes(model_config, targets, rank: int) -> dict[str, dict[str, tuple]]:
    specs = _layer_param_specs(model_config)
    L = model_config.num_layers
    out = {}
    for t in check_targets(targets):
        shape, _, _ = specs[t]
        k = INPUT_DIMS[t]
        out[t] = {"a": (L, *shape[:k], rank), "b": (L, rank, *shape[k:])}
    return out


def lora_shardings(model_config, targets, rank: int, rules) -> dict:
    """NamedShardings of the factors on `rules`' mesh: a and b split like their base weight's axes."""
    axes, shapes = lora_axes(model_config, targets), lora_shapes(model_config, targets, rank)
    return {t: {k: rules.named(axes[t][k], shapes[t][k]) for k in ("a", "b")} for t in axes}


def init_lora(model_config, targets, rank: int, *, seed: int = 0, dtype=jnp.float32) -> dict:
    """a ~ N(0, 1/fan_in), b = 0."""
    if rank <= 0:
        raise ValueError(f"LoRA rank must be positive, got {rank}")
    shapes = lora_shapes(model_config, targets, rank)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
    out = {}
    for key, (t, s) in zip(keys, sorted(shapes.items())):
        fan_in = int(np.prod(s["a"][1:-1]))
        out[t] = {"a": (jax.random.normal(key, s["a"], jnp.float32) / math.sqrt(fan_in)).astype(dtype),
                  "b": jnp.zeros(s["b"], dtype)}
    return out


def as_model_lora(factors: dict) -> dict[str, tuple]:
    """The form `Qwen2.hidden_states(lora=...)` takes."""
    return {t: (f["a"], f["b"]) for t, f in factors.items()}


def merged_params(params: dict, factors: dict, scale: float) -> dict:
    """Model parameters (a nested dict) with W + scale * a @ b folded into every target (a policy export)."""
    layers = dict(params["layers"])
    for t, f in factors.items():
        w = layers[t]
        layers[t] = (w.astype(jnp.float32) + scale * _delta(f["a"], f["b"])).astype(w.dtype)
    return dict(params, layers=layers)


def _delta(a, b):
    """a [L, *in, r] @ b [L, r, *out] -> [L, *in, *out], per layer."""
    return jax.vmap(lambda x, y: jnp.tensordot(x, y, axes=1))(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))

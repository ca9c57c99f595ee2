"""The jitted, sharded train step: objective loss on target-token log-probs, gradient accumulation over
micro-batches, one optimizer update.

The train state is a plain pytree {"params", "opt", "step", "rng"} (Orbax-friendly); `params` are the
trainable arrays: the model's Param state as a nested dict (full training) or the LoRA factors, in which
case the frozen base weights travel as a separate, non-donated argument.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from w4s_jax.models import target_logprobs
from w4s_jax.models.sharding import ShardingRules, state_shardings
from w4s_jax.train.lora import as_model_lora, lora_axes
from w4s_jax.train.objectives import add_weights


@dataclasses.dataclass
class StepSpec:
    """Everything the step closes over (static)."""

    graphdef: Any
    objective: Any
    accum_steps: int
    chunk_size: int
    lora_scale: float | None  # None = full-parameter training


def split_model(model):
    """(graphdef, Param state as a nested dict, the abstract State used to rebuild the model)."""
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state), state


def rebuild(graphdef, template_state, pure):
    state = jax.tree.map(lambda x: x, template_state)
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


def param_shardings(model, rules: ShardingRules) -> dict:
    _, state = nnx.split(model)
    return nnx.to_pure_dict(state_shardings(state, rules))


def lora_shardings(model_config, targets, factors, rules: ShardingRules) -> dict:
    axes = lora_axes(model_config, targets)
    return {t: {k: rules.named(axes[t][k], factors[t][k].shape) for k in ("a", "b")} for t in factors}


def microbatches(x, accum: int, rows_per_unit: int):
    """[R, ...] -> [accum, R / accum, ...]; micro-batch a takes every accum-th unit, so with rows sharded
    in contiguous blocks every micro-batch still spans all devices."""
    R = x.shape[0]
    u = rows_per_unit
    y = x.reshape(R // (accum * u), accum, u, *x.shape[1:])
    y = jnp.swapaxes(y, 0, 1)
    return y.reshape(accum, R // accum, *x.shape[1:])


def even_chunk(max_tokens: int, chunk_size: int) -> int:
    """The chunk size (<= chunk_size) that splits the loss-token buffer into equal chunks, so the chunked
    projection pads at most a few rows instead of up to a whole chunk."""
    n_chunks = -(-max_tokens // chunk_size)
    return -(-max_tokens // n_chunks)


def micro_loss_counts(batch: dict[str, np.ndarray], accum: int, rows_per_unit: int) -> int:
    """Largest number of loss tokens in any micro-batch (host side, for the static buffer size)."""
    m = np.asarray(microbatches(batch["loss_mask"], accum, rows_per_unit))
    return int(m.reshape(accum, -1).sum(-1).max())


def make_train_step(spec: StepSpec, tx: optax.GradientTransformation, template_state, *, state_sharding=None,
                    frozen_sharding=None):
    obj = spec.objective
    rows_per_unit = 2 if obj.pairwise else 1

    def micro_loss(params, frozen, mb, max_tokens):
        if spec.lora_scale is None:
            model, lora = rebuild(spec.graphdef, template_state, params), None
        else:
            model, lora = rebuild(spec.graphdef, template_state, frozen), as_model_lora(params)
        # right padding with a causal mask never lets a real token see padding: no attention mask needed
        # (which keeps the fused causal attention kernels usable)
        logp = target_logprobs(model, mb["input_ids"], mb["targets"], mb["loss_mask"], max_tokens=max_tokens,
                               chunk_size=even_chunk(max_tokens, spec.chunk_size), lora=lora,
                               lora_scale=spec.lora_scale or 1.0)
        terms, metrics = obj.row_terms(logp, mb)
        n = jnp.maximum(mb["num_units"], 1.0)
        return terms.sum() / n, {k: v.sum() / n for k, v in metrics.items()}

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def step(state, frozen, batch, max_tokens):
        A = spec.accum_steps
        per_micro = {k: microbatches(v, A, rows_per_unit) for k, v in batch.items() if k != "num_units"}

        def body(carry, mb):
            grads_acc, loss_acc, met_acc = carry
            mb = dict(mb, num_units=batch["num_units"])
            (loss, metrics), grads = grad_fn(state["params"], frozen, mb, max_tokens)
            grads_acc = jax.tree.map(lambda a, g: a + g.astype(a.dtype), grads_acc, grads)
            met_acc = jax.tree.map(jnp.add, met_acc, metrics)
            return (grads_acc, loss_acc + loss, met_acc), None

        # the metric structure, from the objective alone (no second trace of the model)
        mb0 = dict(jax.tree.map(lambda v: v[0], per_micro), num_units=batch["num_units"])
        met0 = jax.eval_shape(lambda: obj.row_terms(jnp.zeros(mb0["loss_mask"].shape, jnp.float32), mb0)[1])
        met0 = jax.tree.map(lambda _: jnp.zeros((), jnp.float32), met0)
        if A == 1:  # no accumulator
            (loss, metrics), grads = grad_fn(state["params"], frozen, mb0, max_tokens)
        else:
            # gradients accumulate in the parameters' dtype (bf16 for 7B full training: a float32
            # accumulator alone would take 30 GB of an 80 GB GPU)
            zeros = jax.tree.map(jnp.zeros_like, state["params"])
            (grads, loss, metrics), _ = jax.lax.scan(body, (zeros, jnp.zeros(()), met0), per_micro)
        grad_norm = optax.tree.norm(grads)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new_state = {"params": params, "opt": opt, "step": state["step"] + 1, "rng": state["rng"]}
        out = dict(metrics, loss=loss, grad_norm=grad_norm,
                   loss_tokens=batch["loss_mask"].sum().astype(jnp.float32),
                   tokens=batch["attention_mask"].sum().astype(jnp.float32))
        return new_state, out

    kw = {}
    if state_sharding is not None:
        kw["out_shardings"] = (state_sharding, None)
    return jax.jit(step, static_argnames=("max_tokens",), donate_argnums=(0,), **kw)


def device_batch(host_batch: dict[str, np.ndarray], rules: ShardingRules, objective,
                 process_index: int = 0, process_count: int = 1) -> dict[str, jax.Array]:
    """Global host batch -> objective weights -> this host's rows placed as one global sharded array."""
    from w4s_jax.train.batches import host_slice

    full = add_weights(objective, host_batch)
    num_units = full.pop("num_units")
    local = host_slice(full, process_index, process_count)
    out = {}
    for k, v in local.items():
        names = ("batch", "length") if v.ndim == 2 else ("batch",)
        sharding = rules.named(names, full[k].shape)
        out[k] = jax.make_array_from_process_local_data(sharding, v, full[k].shape)
    out["num_units"] = jax.device_put(jnp.float32(num_units), NamedSharding(rules.mesh, PartitionSpec()))
    return out

"""The jitted, sharded train step: the objective's loss (`loss`, the one function the parity tests check) on
target-token log-probs, gradients accumulated over micro-batches, one optimizer update.

The train state is a plain pytree {"params", "opt", "step"} (Orbax-friendly); `params` are the trainable
arrays of a `trainable.FullTraining` or `LoraTraining`, and the frozen ones travel as a separate,
non-donated argument ({} for full training).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from w4s_jax.models import target_logprobs
from w4s_jax.models.sharding import ShardingRules
from w4s_jax.train.batches import SCALAR_KEYS, TOKEN_KEYS
from w4s_jax.train.objectives import add_weights, batch_loss


@dataclasses.dataclass
class StepSpec:
    """Everything the step closes over (static)."""

    training: Any                # trainable.FullTraining | LoraTraining
    objective: Any
    accum_steps: int = 1
    chunk_size: int = 1024
    accum_dtype: Any = None      # gradient accumulator dtype; None = the trainable parameters' dtype


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
    return micro_loss_max(batch["loss_mask"].sum(-1), accum, rows_per_unit)


def micro_loss_max(row_loss_tokens: np.ndarray, accum: int, rows_per_unit: int) -> int:
    """The same from the global batch's per-row loss-token counts (`BatchPlan.row_stats`), which every host
    knows without building the other hosts' rows: micro-batch a holds units a, a + accum, a + 2 accum, ..."""
    per_unit_slot = np.asarray(row_loss_tokens).reshape(-1, accum, rows_per_unit).sum(axis=(0, 2))
    return int(per_unit_slot.max())


def loss(spec: StepSpec, trainable, frozen, batch: dict, max_tokens: int):
    """(loss, metrics) of a (micro-)batch: the objective's `batch_loss` on the policy's target log-probs.
    Terms are divided by the *global* batch's unit count, so micro-batch losses add up to the batch loss."""
    model, forward_kw = spec.training.apply(trainable, frozen)
    # right padding with a causal mask never lets a real token see padding: no attention mask needed
    # (which keeps the fused causal attention kernels usable)
    logp = target_logprobs(model, batch["input_ids"], batch["targets"], batch["loss_mask"], max_tokens=max_tokens,
                           chunk_size=even_chunk(max_tokens, spec.chunk_size), **forward_kw)
    return batch_loss(spec.objective, logp, batch)


def gradients(spec: StepSpec, trainable, frozen, batch: dict, max_tokens: int):
    """(gradients, loss, metrics) of the whole batch, accumulated over `spec.accum_steps` micro-batches in
    `spec.accum_dtype` (default: the parameters' dtype); the gradients come back in the accumulator's dtype."""
    grad_fn = jax.value_and_grad(lambda p, mb: loss(spec, p, frozen, mb, max_tokens), has_aux=True)
    A = spec.accum_steps
    rows_per_unit = 2 if spec.objective.pairwise else 1
    per_micro = {k: microbatches(v, A, rows_per_unit) for k, v in batch.items() if k != "num_units"}
    mb0 = dict(jax.tree.map(lambda v: v[0], per_micro), num_units=batch["num_units"])
    if A == 1:  # no accumulator
        (value, metrics), grads = grad_fn(trainable, mb0)
        return grads, value, metrics

    def body(carry, mb):
        grads_acc, loss_acc, met_acc = carry
        (value, metrics), grads = grad_fn(trainable, dict(mb, num_units=batch["num_units"]))
        grads_acc = jax.tree.map(lambda a, g: a + g.astype(a.dtype), grads_acc, grads)
        return (grads_acc, loss_acc + value, jax.tree.map(jnp.add, met_acc, metrics)), None

    # the metric structure, from the objective alone (no second trace of the model)
    met0 = jax.eval_shape(lambda: batch_loss(spec.objective, jnp.zeros(mb0["loss_mask"].shape, jnp.float32), mb0)[1])
    met0 = jax.tree.map(lambda _: jnp.zeros((), jnp.float32), met0)
    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype if spec.accum_dtype is None else spec.accum_dtype),
                         trainable)
    (grads, value, metrics), _ = jax.lax.scan(body, (zeros, jnp.zeros(()), met0), per_micro)
    return grads, value, metrics


def make_train_step(spec: StepSpec, tx: optax.GradientTransformation, *, state_sharding=None):
    """jit(step(state, frozen, batch, max_tokens) -> (new state, metrics)); the state is donated."""

    def step(state, frozen, batch, max_tokens):
        grads, value, metrics = gradients(spec, state["params"], frozen, batch, max_tokens)
        grad_norm = optax.tree.norm(grads)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        # float32 gradients of bf16 parameters (accum_dtype) would promote bf16 optimizer state: keep its dtypes
        opt = jax.tree.map(lambda new, old: new.astype(old.dtype), opt, state["opt"])
        params = optax.apply_updates(state["params"], updates)  # keeps the parameters' dtype
        new_state = {"params": params, "opt": opt, "step": state["step"] + 1}
        out = dict(metrics, loss=value, grad_norm=grad_norm,
                   loss_tokens=batch["loss_mask"].sum().astype(jnp.float32),
                   tokens=batch["attention_mask"].sum().astype(jnp.float32))
        return new_state, out

    kw = {}
    if state_sharding is not None:
        kw["out_shardings"] = (state_sharding, None)
    return jax.jit(step, static_argnames=("max_tokens",), donate_argnums=(0,), **kw)


def local_rows(rules: ShardingRules, rows: int) -> slice:
    """The rows of a [rows, ...] batch that this process's devices hold under the batch sharding: what this
    host builds and feeds. All of them in one process, or where the batch is not split over hosts."""
    sharding = rules.named(("batch",), (rows,))
    spans = {idx[0].indices(rows)[:2] for idx in sharding.addressable_devices_indices_map((rows,)).values()}
    start, stop = min(a for a, _ in spans), max(b for _, b in spans)
    if sum(b - a for a, b in spans) != stop - start:
        raise ValueError(f"this host's devices hold rows {sorted(spans)} of the batch, not one contiguous block; "
                         f"order the mesh's devices by host")
    return slice(start, stop)


def device_arrays(local: dict[str, np.ndarray], rules: ShardingRules, rows: int) -> dict[str, jax.Array]:
    """This host's rows `local_rows(rules, rows)` of a [rows, ...] batch -> global arrays sharded over the batch
    axes (each host passes only its own rows)."""
    out = {}
    for k, v in local.items():
        shape = (rows, *v.shape[1:])
        names = ("batch", "length") if v.ndim == 2 else ("batch",)
        out[k] = jax.make_array_from_process_local_data(rules.named(names, shape), v, shape)
    return out


def device_batch(host_batch: dict[str, np.ndarray], rules: ShardingRules, objective,
                 stats: dict[str, np.ndarray] | None = None) -> dict[str, jax.Array]:
    """Host batch -> objective weights -> one global array per key, sharded over the batch axes.

    `host_batch` is the whole batch (every host takes its own rows of it), or, with `stats`
    (`BatchPlan.row_stats` of the whole batch), only this host's rows `local_rows(rules, rows)`: the weights
    depend on the whole batch (self-normalisation, the unit count), the tokens only on the host's rows."""
    whole = stats is None
    weighted = add_weights(objective, {k: (host_batch if whole else stats)[k] for k in SCALAR_KEYS})
    num_units = weighted.pop("num_units")
    rows = len(weighted["unit_mask"])
    mine = local_rows(rules, rows)
    local = {k: v[mine] for k, v in weighted.items()}
    for k in TOKEN_KEYS:
        local[k] = host_batch[k][mine] if whole else host_batch[k]
        if len(local[k]) != mine.stop - mine.start:
            raise ValueError(f"batch key {k!r}: {len(local[k])} rows, this host holds rows {mine.start}:{mine.stop}")
    out = device_arrays(local, rules, rows)
    # from this host's own value (device_put would compare it with every other host's: a collective per step)
    out["num_units"] = jax.make_array_from_callback((), NamedSharding(rules.mesh, PartitionSpec()),
                                                    lambda _: np.float32(num_units))
    return out

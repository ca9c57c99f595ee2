"""Log-probabilities of selected target tokens without materialising [B, T, V] logits.

Only positions that carry loss are projected to the vocabulary: their hidden states are gathered into a
fixed-size buffer (static shape `max_tokens`, so bucketed callers do not recompile), which is then scanned
in chunks of `chunk_size` rows. Each chunk's [chunk, V] logits live only inside a rematerialised function,
so the backward pass recomputes them instead of storing them: peak extra memory is O(chunk * V).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array


def hidden_target_logprobs(hidden: Array, out_embedding: Array, targets: Array, loss_mask: Array, *,
                           max_tokens: int | None = None, chunk_size: int = 1024) -> Array:
    """log p(targets[b, t]) from hidden [B, T, D] and the [D, V] output embedding; 0 where loss_mask is off.

    `max_tokens` bounds how many masked positions are computed (default B*T). Callers that pass a smaller
    bound must make sure loss_mask.sum() <= max_tokens: positions beyond it get 0.
    """
    B, T, D = hidden.shape
    n = B * T if max_tokens is None else int(max_tokens)
    chunk = max(1, min(chunk_size, n))
    n_chunks = math.ceil(n / chunk)
    n_pad = n_chunks * chunk

    flat_mask = loss_mask.reshape(-1).astype(bool)
    (idx,) = jnp.nonzero(flat_mask, size=n_pad, fill_value=B * T)
    valid = idx < B * T
    idx = jnp.where(valid, idx, 0)
    h = jnp.take(hidden.reshape(B * T, D), idx, axis=0).reshape(n_chunks, chunk, D)
    t = jnp.take(targets.reshape(-1), idx).reshape(n_chunks, chunk)
    w = out_embedding.astype(hidden.dtype)

    @jax.checkpoint
    def chunk_logprobs(h_c, t_c):
        logits = jnp.einsum("cd,dv->cv", h_c, w, preferred_element_type=jnp.float32)
        target_logit = jnp.take_along_axis(logits, t_c[:, None], axis=-1)[:, 0]
        return target_logit - jax.nn.logsumexp(logits, axis=-1)

    lp = jax.lax.map(lambda xs: chunk_logprobs(*xs), (h, t)).reshape(n_pad)
    lp = jnp.where(valid, lp, 0.0)
    out = jnp.zeros((B * T,), jnp.float32).at[idx].add(lp)
    return out.reshape(B, T)


def target_logprobs(model, input_ids: Array, targets: Array, loss_mask: Array, *,
                    attention_mask: Array | None = None, positions: Array | None = None,
                    segment_ids: Array | None = None, max_tokens: int | None = None,
                    chunk_size: int = 1024, lora=None, lora_scale: float = 1.0) -> Array:
    """Per-token log p(targets) [B, T] (float32) under `model`, 0 where loss_mask is off.

    For next-token training, targets[b, t] = input_ids[b, t + 1].
    """
    hidden = model.hidden_states(input_ids, attention_mask, positions=positions, segment_ids=segment_ids,
                                 lora=lora, lora_scale=lora_scale)
    return hidden_target_logprobs(hidden, model.output_embedding(), targets, loss_mask,
                                  max_tokens=max_tokens, chunk_size=chunk_size)

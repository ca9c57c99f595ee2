"""Qwen2 / Qwen2.5 decoder in Flax NNX (Qwen3 and Llama-3 differ only in a few flags of the config).

Parameters live in NNX Variables with `logical_axes` metadata; the decoder layers are stacked along a
leading "layers" axis and run with `jax.lax.scan`, so compile time does not grow with depth. The layer
math itself is a pure function of one layer's arrays (`_decoder_layer`), which keeps the scan, remat and
the KV cache simple.

Numerics follow transformers' `Qwen2ForCausalLM`: RMSNorm in float32, rotary embeddings from float32
frequencies, softmax in float32, logits returned in float32.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from w4s_jax.models.config import ModelConfig
from w4s_jax.models.sharding import ShardingRules, constrain

Array = jax.Array

REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_saveable,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    # Keep the projections' outputs and the attention result; recompute norms, rope and the MLP.
    "minimal": jax.checkpoint_policies.save_only_these_names("query", "key", "value", "attn_out"),
}

# Layer parameter name -> (shape builder, logical axes, initializer). Shapes use
# D=hidden, H=heads, K=kv heads, E=head_dim, F=intermediate.
# The KV cache: per layer, [batch, kv heads, slots, head dim], each head's slots contiguous (cached_attention).
CACHE_AXES = ("batch", "act_kv_heads", "cache_length", None)
_NORMAL = nnx.initializers.normal(0.02)
_ONES = nnx.initializers.ones
_ZEROS = nnx.initializers.zeros


def _layer_param_specs(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], tuple[str, ...], Any]]:
    D, H, K, E, F = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size
    specs = {
        "attn_norm": ((D,), ("embed",), _ONES),
        "q_proj": ((D, H, E), ("embed", "q_heads", "head_dim"), _NORMAL),
        "k_proj": ((D, K, E), ("embed", "kv_heads", "head_dim"), _NORMAL),
        "v_proj": ((D, K, E), ("embed", "kv_heads", "head_dim"), _NORMAL),
        "o_proj": ((H, E, D), ("q_heads", "head_dim", "embed"), _NORMAL),
        "mlp_norm": ((D,), ("embed",), _ONES),
        "gate_proj": ((D, F), ("embed", "mlp"), _NORMAL),
        "up_proj": ((D, F), ("embed", "mlp"), _NORMAL),
        "down_proj": ((F, D), ("mlp", "embed"), _NORMAL),
    }
    if cfg.qkv_bias:
        specs["q_bias"] = ((H, E), ("q_heads", "head_dim"), _ZEROS)
        specs["k_bias"] = ((K, E), ("kv_heads", "head_dim"), _ZEROS)
        specs["v_bias"] = ((K, E), ("kv_heads", "head_dim"), _ZEROS)
    if cfg.qk_norm:
        specs["q_norm"] = ((E,), ("head_dim",), _ONES)
        specs["k_norm"] = ((E,), ("head_dim",), _ONES)
    return specs


class DecoderStack(nnx.Module):
    """All decoder layers' parameters, each stacked along a leading `layers` axis."""

    def __init__(self, cfg: ModelConfig, *, param_dtype, rngs: nnx.Rngs):
        L = cfg.num_layers
        for name, (shape, axes, init) in _layer_param_specs(cfg).items():
            setattr(self, name, nnx.Param(init(rngs.params(), (L, *shape), param_dtype),
                                          logical_axes=("layers", *axes)))

    def arrays(self) -> dict[str, Array]:
        return {k: v.get_value() for k, v in vars(self).items() if isinstance(v, nnx.Param)}


# ---------------------------------------------------------------------------------------------------
# Pure building blocks


def rms_norm(x: Array, scale: Array, eps: float) -> Array:
    dtype = x.dtype
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return scale.astype(dtype) * x32.astype(dtype)


def rope_inv_freq(cfg: ModelConfig) -> Array:
    E = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (jnp.arange(0, E, 2, dtype=jnp.float32) / E))
    if cfg.rope_scaling:  # Llama-3 frequency-dependent scaling
        s = dict(cfg.rope_scaling)
        factor, lo, hi, old = (s["factor"], s["low_freq_factor"], s["high_freq_factor"],
                               s["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = jnp.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        inv = jnp.where(medium, smoothed, scaled)
    return inv


def rope_cos_sin(positions: Array, inv_freq: Array, dtype) -> tuple[Array, Array]:
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, E/2]
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb).astype(dtype), jnp.sin(emb).astype(dtype)


def apply_rope(x: Array, cos: Array, sin: Array) -> Array:
    # x: [B, T, heads, E]; cos/sin: [B, T, E]
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, :, None, :] + rotated * sin[:, :, None, :]


def _decoder_layer(p: dict[str, Array], x: Array, *, cfg: ModelConfig, cos: Array, sin: Array,
                   mask: Array | None, is_causal: bool, cache: tuple[Array, Array, Array, Array] | None,
                   dtype, attn_impl: str | None, sh: ShardingRules | None):
    """One pre-norm decoder layer. `cache` = (this layer's k cache, v cache, write index) or None."""
    eps = cfg.rms_norm_eps
    c = lambda a: a.astype(dtype)
    h = rms_norm(x, p["attn_norm"], eps)
    q = jnp.einsum("btd,dhe->bthe", h, c(p["q_proj"]))
    k = jnp.einsum("btd,dke->btke", h, c(p["k_proj"]))
    v = jnp.einsum("btd,dke->btke", h, c(p["v_proj"]))
    if cfg.qkv_bias:
        q, k, v = q + c(p["q_bias"]), k + c(p["k_bias"]), v + c(p["v_bias"])
    if cfg.qk_norm:
        q, k = rms_norm(q, p["q_norm"], eps), rms_norm(k, p["k_norm"], eps)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    q = checkpoint_name(constrain(q, ("batch", "length", "act_heads", None), sh), "query")
    k = checkpoint_name(constrain(k, ("batch", "length", "act_kv_heads", None), sh), "key")
    v = checkpoint_name(constrain(v, ("batch", "length", "act_kv_heads", None), sh), "value")

    new_cache = None
    if cache is not None:
        k_cache, v_cache, index = cache
        zero = jnp.zeros((), jnp.int32)
        at = (zero, zero, index, zero)   # this layer's cache: [B, K, S, E]
        k_cache = jax.lax.dynamic_update_slice(k_cache, jnp.swapaxes(k, 1, 2).astype(k_cache.dtype), at)
        v_cache = jax.lax.dynamic_update_slice(v_cache, jnp.swapaxes(v, 1, 2).astype(v_cache.dtype), at)
        new_cache = (k_cache, v_cache)
        attn = cached_attention(q, k_cache.astype(dtype), v_cache.astype(dtype), mask)
    else:
        attn = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, implementation=attn_impl)
    attn = checkpoint_name(attn, "attn_out")
    x = x + jnp.einsum("bthe,hed->btd", attn, c(p["o_proj"]))
    x = constrain(x, ("batch", "length", "act_embed"), sh)

    h = rms_norm(x, p["mlp_norm"], eps)
    gate = jnp.einsum("btd,df->btf", h, c(p["gate_proj"]))
    up = jnp.einsum("btd,df->btf", h, c(p["up_proj"]))
    act = constrain(jax.nn.silu(gate) * up, ("batch", "length", "act_mlp"), sh)
    x = x + jnp.einsum("btf,fd->btd", act, c(p["down_proj"]))
    x = constrain(x, ("batch", "length", "act_embed"), sh)
    return x, new_cache


def cached_attention(q: Array, k: Array, v: Array, mask: Array) -> Array:
    """Grouped-query attention over a KV cache: q [B, T, H, E], k and v [B, K, S, E] (the cache's layout),
    mask bool broadcastable to [B, 1, T, S] -> [B, T, H, E].

    Two batched matmuls over (B, K) with the cache slots as the contiguous operand: no copy of the cache per
    query head (as repeating K heads to H would make) and no transpose of it. On a CPU, 80 decode rows of a
    512-slot cache took 6.6 ms per layer this way against 30 ms through `jax.nn.dot_product_attention`
    (whose [B, S, K, E] operands XLA transposes first). Scores and softmax in float32; the normalisation is
    applied after the value matmul (a [B, K, G*T, E] array, not [.., S])."""
    B, T, H, E = q.shape
    K = k.shape[1]
    G = H // K
    qg = (q * (1.0 / math.sqrt(E))).astype(q.dtype).reshape(B, T, K, G, E)
    qg = jnp.transpose(qg, (0, 2, 3, 1, 4)).reshape(B, K, G * T, E)
    s = jax.lax.dot_general(qg, k, (((3,), (3,)), ((0, 1), (0, 1))), preferred_element_type=jnp.float32)
    bias = jnp.where(mask, 0.0, _MASKED).astype(jnp.float32)            # [B, 1, T, S]
    s = s.reshape(B, K, G, T, -1) + bias[:, :, None]
    p = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
    o = jax.lax.dot_general(p.reshape(B, K, G * T, -1).astype(v.dtype), v, (((3,), (2,)), ((0, 1), (0, 1))),
                            preferred_element_type=jnp.float32)
    o = o / jnp.sum(p, axis=-1).reshape(B, K, G * T, 1)
    return jnp.transpose(o.reshape(B, K, G, T, E), (0, 3, 1, 2, 4)).reshape(B, T, H, E).astype(q.dtype)


_MASKED = -1e30   # finite: a row with every slot masked (a padding row) averages instead of making NaNs


def _merge_lora(weight_and_factors, scale: float) -> Array:
    w, (a, b) = weight_and_factors
    delta = jnp.tensordot(a.astype(jnp.float32), b.astype(jnp.float32), axes=1) * scale
    return (w.astype(jnp.float32) + delta).astype(w.dtype)


def attention_mask_for(*, batch: int, q_len: int, kv_len: int, attention_mask: Array | None,
                       segment_ids: Array | None, q_offset: Array | int = 0) -> Array | None:
    """Boolean [B, 1, T, S] mask (causal by slot, key padding, same segment), or None if causal suffices."""
    if attention_mask is None and segment_ids is None and kv_len == q_len:
        return None
    q_slot = q_offset + jnp.arange(q_len)[:, None]
    k_slot = jnp.arange(kv_len)[None, :]
    mask = jnp.broadcast_to(k_slot <= q_slot, (batch, q_len, kv_len))
    if attention_mask is not None:
        mask = mask & attention_mask.astype(bool)[:, None, :]
    if segment_ids is not None:
        mask = mask & (segment_ids[:, :, None] == segment_ids[:, None, :])
    return mask[:, None, :, :]


# ---------------------------------------------------------------------------------------------------


class Qwen2(nnx.Module):
    """Causal LM. `model(input_ids, attention_mask)` -> float32 logits [B, T, V].

    dtype is the compute dtype, param_dtype the storage dtype of the parameters. `remat` names a policy in
    REMAT_POLICIES. `sharding` (a mesh plus logical rules) adds sharding constraints on activations.
    attn_impl: None/"xla", or "cudnn" (GPU flash attention); "auto" picks cudnn on GPU for 16-bit compute.
    """

    def __init__(self, config: ModelConfig, *, dtype=jnp.float32, param_dtype=jnp.float32,
                 remat: str = "none", attn_impl: str = "auto", sharding: ShardingRules | None = None,
                 rngs: nnx.Rngs):
        config.validate()
        if remat not in REMAT_POLICIES:
            raise ValueError(f"unknown remat policy {remat!r}; known: {sorted(REMAT_POLICIES)}")
        if attn_impl not in ("auto", "xla", "cudnn"):
            raise ValueError(f"attn_impl must be auto, xla or cudnn, got {attn_impl!r}")
        self.config = config
        self.dtype = jnp.dtype(dtype)
        self.param_dtype = jnp.dtype(param_dtype)
        self.remat = remat
        self.attn_impl = attn_impl
        self.sharding = sharding
        V, D = config.vocab_size, config.hidden_size
        self.embed = nnx.Param(_NORMAL(rngs.params(), (V, D), param_dtype), logical_axes=("vocab", "embed"))
        self.layers = DecoderStack(config, param_dtype=param_dtype, rngs=rngs)
        self.final_norm = nnx.Param(_ONES(rngs.params(), (D,), param_dtype), logical_axes=("embed",))
        if not config.tie_word_embeddings:
            self.lm_head = nnx.Param(_NORMAL(rngs.params(), (D, V), param_dtype), logical_axes=("embed", "vocab"))

    # -- pieces the sampler and the losses use ------------------------------------------------------

    def _attn_impl(self, mask: Array | None) -> str | None:
        if self.attn_impl == "auto":
            # cuDNN flash attention for plain causal 16-bit attention on GPU; explicit masks (padding,
            # packed segments, KV cache slots) take XLA's implementation.
            gpu16 = jax.default_backend() == "gpu" and self.dtype in (jnp.bfloat16, jnp.float16)
            return "cudnn" if gpu16 and mask is None else "xla"
        return self.attn_impl

    def output_embedding(self) -> Array:
        """[D, V] matrix that maps final hidden states to logits."""
        return self.embed.get_value().T if self.config.tie_word_embeddings else self.lm_head.get_value()

    def logits(self, hidden: Array) -> Array:
        w = self.output_embedding().astype(self.dtype)
        out = jnp.einsum("...d,dv->...v", hidden, w, preferred_element_type=jnp.float32)
        return out.astype(jnp.float32)

    def init_cache(self, batch: int, length: int, dtype=None) -> dict[str, Array]:
        """Zeroed "k" and "v" caches of `length` slots: a list of one array per layer each, laid out as
        CACHE_AXES. Separate arrays, not one stacked [L, ...] array updated inside the layer scan: on a CPU, XLA
        copied the stacked cache at every layer (an 80-row decode step took 3x longer)."""
        cfg = self.config
        shape = (batch, cfg.num_kv_heads, length, cfg.head_dim)
        dtype = self.dtype if dtype is None else dtype
        # Separate buffers: a jit that donates the cache may not receive one buffer twice.
        return {k: [constrain(jnp.zeros(shape, dtype), CACHE_AXES, self.sharding) for _ in range(cfg.num_layers)]
                for k in ("k", "v")}

    def hidden_states(self, input_ids: Array, attention_mask: Array | None = None, *,
                      positions: Array | None = None, segment_ids: Array | None = None,
                      cache: dict[str, Array] | None = None, cache_index: Array | int | None = None,
                      lora: dict[str, tuple[Array, Array]] | None = None, lora_scale: float = 1.0):
        """Final (normed) hidden states [B, T, D] in the compute dtype.

        Without a cache: `attention_mask` [B, T] marks real tokens, `segment_ids` [B, T] separates packed
        sequences, `positions` default to 0..T-1 (as transformers does when none are given).
        With a cache (from `init_cache`): the T new tokens are written at slots cache_index..cache_index+T-1,
        `attention_mask` [B, S] marks valid slots of the whole cache (the new ones included) and
        `positions` [B, T] are required. Returns (hidden, new_cache).
        `lora` maps layer parameter names (e.g. "q_proj") to stacked low-rank factors (a [L, *in, r],
        b [L, r, *out]); each layer uses W + lora_scale * a @ b, merged inside the scan so the merged
        weights exist for one layer at a time.
        """
        cfg, sh, dtype = self.config, self.sharding, self.dtype
        B, T = input_ids.shape
        if cache is not None:
            if positions is None or cache_index is None:
                raise ValueError("a cached forward needs positions and cache_index")
            cache_index = jnp.asarray(cache_index, jnp.int32)
            S = cache["k"][0].shape[2]
        else:
            S = T
            if positions is None:
                positions = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (B, T))
        x = jnp.take(self.embed.get_value(), input_ids, axis=0).astype(dtype)
        x = constrain(x, ("batch", "length", "act_embed"), sh)
        cos, sin = rope_cos_sin(positions, rope_inv_freq(cfg), dtype)
        mask = attention_mask_for(batch=B, q_len=T, kv_len=S, attention_mask=attention_mask,
                                  segment_ids=segment_ids, q_offset=0 if cache is None else cache_index)
        attn_impl = self._attn_impl(mask)
        layer_kw = dict(cfg=cfg, cos=cos, sin=sin, mask=mask, is_causal=mask is None, dtype=dtype,
                        attn_impl=attn_impl, sh=sh)
        params = self.layers.arrays()
        if lora:
            unknown = set(lora) - set(params)
            if unknown:
                raise ValueError(f"LoRA targets {sorted(unknown)} are not layer parameters {sorted(params)}")
            params = {k: (v, lora[k]) if k in lora else v for k, v in params.items()}

        def merged(p):
            return {k: _merge_lora(v, lora_scale) if isinstance(v, tuple) else v for k, v in p.items()}

        if cache is None:
            def body(x, p):
                return _decoder_layer(merged(p), x, cache=None, **layer_kw)[0], None

            policy = REMAT_POLICIES[self.remat]
            if self.remat != "none":
                body = jax.checkpoint(body, policy=policy, prevent_cse=False)
            x, _ = jax.lax.scan(body, x, params)
            new_cache = None
        else:
            # Layers unrolled over the per-layer caches (see init_cache); the weights are sliced per layer.
            new_cache = {"k": [], "v": []}
            for layer in range(cfg.num_layers):
                p = jax.tree.map(lambda a, i=layer: a[i], params)
                x, (k, v) = _decoder_layer(merged(p), x, cache=(cache["k"][layer], cache["v"][layer], cache_index),
                                           **layer_kw)
                new_cache["k"].append(k)
                new_cache["v"].append(v)
        x = rms_norm(x, self.final_norm.get_value(), cfg.rms_norm_eps)
        return x if cache is None else (x, new_cache)

    def __call__(self, input_ids: Array, attention_mask: Array | None = None, *,
                 positions: Array | None = None, segment_ids: Array | None = None,
                 cache: dict[str, Array] | None = None, cache_index: Array | int | None = None,
                 lora: dict[str, tuple[Array, Array]] | None = None, lora_scale: float = 1.0):
        out = self.hidden_states(input_ids, attention_mask, positions=positions, segment_ids=segment_ids,
                                 cache=cache, cache_index=cache_index, lora=lora, lora_scale=lora_scale)
        if cache is None:
            return self.logits(out)
        hidden, new_cache = out
        return self.logits(hidden), new_cache

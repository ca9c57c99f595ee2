"""Hugging Face checkpoints in and out: config.json + model.safetensors (or sharded with an index).

Loading maps every HF tensor onto our layout (stacked layers, [in, heads, head_dim] projections) inside
`jax.make_array_from_callback`, so each device shard is read straight from the memory-mapped file.
"""
from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from w4s_jax.models.config import ConfigError, ModelConfig
from w4s_jax.models.qwen2 import Qwen2
from w4s_jax.models.safetensors_io import CheckpointError, SafetensorsFile, write_safetensors
from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, host_array, sync_processes

log = logging.getLogger(__name__)

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Tensors some published checkpoints carry that the model does not use.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def _layer_map(cfg: ModelConfig) -> dict[str, tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """our layer param -> (HF name suffix, HF shape, HF tensor viewed as, perm: ours = view.transpose(perm))."""
    D, H, K, E, F = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size
    m = {
        "attn_norm": ("input_layernorm.weight", (D,), (D,), (0,)),
        "q_proj": ("self_attn.q_proj.weight", (H * E, D), (H, E, D), (2, 0, 1)),
        "k_proj": ("self_attn.k_proj.weight", (K * E, D), (K, E, D), (2, 0, 1)),
        "v_proj": ("self_attn.v_proj.weight", (K * E, D), (K, E, D), (2, 0, 1)),
        "o_proj": ("self_attn.o_proj.weight", (D, H * E), (D, H, E), (1, 2, 0)),
        "mlp_norm": ("post_attention_layernorm.weight", (D,), (D,), (0,)),
        "gate_proj": ("mlp.gate_proj.weight", (F, D), (F, D), (1, 0)),
        "up_proj": ("mlp.up_proj.weight", (F, D), (F, D), (1, 0)),
        "down_proj": ("mlp.down_proj.weight", (D, F), (D, F), (1, 0)),
    }
    if cfg.qkv_bias:
        m.update(q_bias=("self_attn.q_proj.bias", (H * E,), (H, E), (0, 1)),
                 k_bias=("self_attn.k_proj.bias", (K * E,), (K, E), (0, 1)),
                 v_bias=("self_attn.v_proj.bias", (K * E,), (K, E), (0, 1)))
    if cfg.qk_norm:
        m.update(q_norm=("self_attn.q_norm.weight", (E,), (E,), (0,)),
                 k_norm=("self_attn.k_norm.weight", (E,), (E,), (0,)))
    return m


def _param_plan(cfg: ModelConfig, prefix: str) -> dict[tuple[str, ...], list[tuple[str, tuple, tuple, tuple]]]:
    """our param path -> one (hf name, hf shape, view shape, perm) per stacked layer (or a single one)."""
    D, V = cfg.hidden_size, cfg.vocab_size
    plan: dict[tuple[str, ...], list] = {
        ("embed",): [(f"{prefix}embed_tokens.weight", (V, D), (V, D), (0, 1))],
        ("final_norm",): [(f"{prefix}norm.weight", (D,), (D,), (0,))],
    }
    if not cfg.tie_word_embeddings:
        plan[("lm_head",)] = [("lm_head.weight", (V, D), (V, D), (1, 0))]
    for name, (suffix, shape, view, perm) in _layer_map(cfg).items():
        plan[("layers", name)] = [(f"{prefix}layers.{i}.{suffix}", shape, view, perm)
                                  for i in range(cfg.num_layers)]
    return plan


def _open_checkpoint(path: str) -> dict[str, SafetensorsFile]:
    """tensor name -> the file holding it."""
    index_path = os.path.join(path, INDEX_FILE)
    single = os.path.join(path, SINGLE_FILE)
    if os.path.exists(index_path):
        try:
            with open(index_path) as f:
                weight_map = json.load(f)["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index_path}: not a valid safetensors index ({e!r})") from None
        files = {fn: SafetensorsFile(os.path.join(path, fn)) for fn in sorted(set(weight_map.values()))}
        out = {}
        for name, fn in weight_map.items():
            if name not in files[fn].entries:
                raise CheckpointError(f"{os.path.join(path, fn)}: tensor {name!r} listed in {INDEX_FILE} "
                                      f"is not in the file")
            out[name] = files[fn]
        return out
    if os.path.exists(single):
        f = SafetensorsFile(single)
        return {name: f for name in f.keys()}
    raise CheckpointError(f"{path}: no {SINGLE_FILE} or {INDEX_FILE} found")


def _read(file: SafetensorsFile, name: str, view: tuple, perm: tuple, index: tuple, dtype) -> np.ndarray:
    """Our-layout slice `index` of one HF tensor, converted to `dtype`."""
    hf_index: list[Any] = [slice(None)] * len(view)
    for j, s in enumerate(index):
        hf_index[perm[j]] = s
    arr = file[name].reshape(view)[tuple(hf_index)].transpose(perm)
    return np.asarray(arr, dtype=dtype)


def load_pretrained(path: str | os.PathLike, *, dtype=jnp.bfloat16, param_dtype=None, mesh=None,
                    rules=DEFAULT_RULES, remat: str = "none", attn_impl: str = "auto") -> Qwen2:
    """Load a Qwen2/Qwen2.5/Qwen3/Llama checkpoint directory in the Hugging Face layout.

    `dtype` is the compute dtype and, unless `param_dtype` is given, the storage dtype. With a `mesh`, every
    parameter is created sharded by the logical rules; each device reads only its slice from disk.
    """
    path = os.fspath(path)
    cfg = ModelConfig.from_json_file(os.path.join(path, "config.json"))
    param_dtype = jnp.dtype(dtype if param_dtype is None else param_dtype)
    tensors = _open_checkpoint(path)
    prefix = "model." if "model.embed_tokens.weight" in tensors else ""
    plan = _param_plan(cfg, prefix)

    used = set()
    for entries in plan.values():
        for name, want, _, _ in entries:
            if name not in tensors:
                raise CheckpointError(f"{path}: tensor {name!r} missing from the checkpoint "
                                      f"(config.json describes a {cfg.family} model with {cfg.num_layers} layers)")
            f = tensors[name]
            if f.shape(name) != tuple(want):
                raise CheckpointError(f"{f.path}: tensor {name!r} has shape {f.shape(name)}, expected "
                                      f"{tuple(want)} from config.json")
            used.add(name)
    extra = [n for n in tensors if n not in used and not n.endswith(_IGNORED_SUFFIXES)
             and not (cfg.tie_word_embeddings and n == "lm_head.weight")]
    if extra:
        log.warning("%s: ignoring %d tensors the model does not use, e.g. %s", path, len(extra), extra[:3])

    sharding = ShardingRules(mesh, tuple(rules)) if mesh is not None else None
    abstract = nnx.eval_shape(lambda: Qwen2(cfg, dtype=dtype, param_dtype=param_dtype, remat=remat,
                                            attn_impl=attn_impl, sharding=sharding, rngs=nnx.Rngs(0)))
    graphdef, abs_state = nnx.split(abstract)
    single_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def make(path_key, var):
        entries = plan[path_key]
        shape = var.shape
        target = sharding.named(var.logical_axes, shape) if sharding else single_device
        stacked = path_key[0] == "layers"

        def callback(index):
            if not stacked:
                name, _, view, perm = entries[0]
                return _read(tensors[name], name, view, perm, index, param_dtype)
            layers = range(*index[0].indices(shape[0]))
            return np.stack([_read(tensors[entries[l][0]], entries[l][0], *entries[l][2:], index[1:], param_dtype)
                             for l in layers])

        return jax.make_array_from_callback(shape, target, callback)

    flat = nnx.to_flat_state(abs_state)
    loaded = [(k, v.replace(make(tuple(k), v))) for k, v in flat]
    state = nnx.from_flat_state(loaded)
    return nnx.merge(graphdef, state)


def _hf_tensors(cfg: ModelConfig) -> list[tuple[str, tuple[str, ...], int | None, tuple, tuple, tuple]]:
    """(hf name, our param path, layer or None, hf shape, view shape, perm) in checkpoint order:
    embedding, layer by layer, final norm, output head."""
    plan = _param_plan(cfg, "model.")
    out = [(*plan[("embed",)][0][:1], ("embed",), None, *plan[("embed",)][0][1:])]
    for i in range(cfg.num_layers):
        out += [(plan[key][i][0], key, i, *plan[key][i][1:]) for key in plan if key[0] == "layers"]
    for key in (("final_norm",), ("lm_head",)):
        if key in plan:
            out.append((plan[key][0][0], key, None, *plan[key][0][1:]))
    return out


_TORCH_DTYPE = {np.dtype(np.float32): "float32", np.dtype(jnp.bfloat16): "bfloat16", np.dtype(np.float16): "float16"}


def save_pretrained(model: Qwen2, path: str | os.PathLike, *, max_shard_bytes: int = 5 * 1024**3,
                    dtype=None) -> None:
    """Write `model` in the Hugging Face layout that transformers, vLLM and SGLang load.

    Tensors are gathered to the host one at a time (one layer's slice of a stacked parameter), so no host
    ever holds more than one tensor beyond its own shards. Above `max_shard_bytes` the weights are split into
    model-0000k-of-0000n.safetensors files with a model.safetensors.index.json.

    With parameters spread over several processes (multi-host), every process must call it: each tensor is
    gathered collectively, in the same order everywhere, and process 0 writes the files.
    """
    path = os.fspath(path)
    lead = jax.process_index() == 0
    if lead:
        os.makedirs(path, exist_ok=True)
    cfg = model.config
    out_dtype = np.dtype(model.param_dtype if dtype is None else dtype)
    if out_dtype not in _TORCH_DTYPE:
        raise ValueError(f"save_pretrained: unsupported dtype {out_dtype}")
    state = dict((tuple(k), v) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))
    entries = _hf_tensors(cfg)
    by_name = {e[0]: e for e in entries}
    shapes = {e[0]: e[3] for e in entries}

    def fetch(hf_name):
        _, key, layer, hf_shape, _, perm = by_name[hf_name]
        arr = state[key].get_value() if layer is None else state[key].get_value()[layer]
        arr = host_array(arr)
        return arr.transpose(np.argsort(perm)).reshape(hf_shape).astype(out_dtype)

    # Greedy split into shards in checkpoint order.
    shards: list[list[str]] = [[]]
    size = 0
    for hf in by_name:
        nbytes = int(np.prod(shapes[hf])) * out_dtype.itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(hf)
        size += nbytes

    names = [SINGLE_FILE] if len(shards) == 1 else \
        [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    if not lead:  # take part in every gather, in the writer's order; process 0 writes
        for shard in shards:
            for n in shard:
                fetch(n)
        sync_processes("save_pretrained-done")
        return
    for stale in glob.glob(os.path.join(path, "model*.safetensors")) + glob.glob(os.path.join(path, INDEX_FILE)):
        os.remove(stale)
    weight_map = {}
    for fn, shard in zip(names, shards):
        write_safetensors(os.path.join(path, fn), [(n, shapes[n], out_dtype) for n in shard], fetch)
        weight_map.update({n: fn for n in shard})
    if len(shards) > 1:
        total = sum(int(np.prod(shapes[n])) * out_dtype.itemsize for n in weight_map)
        _write_json(os.path.join(path, INDEX_FILE), {"metadata": {"total_size": total}, "weight_map": weight_map})

    _write_json(os.path.join(path, "config.json"), cfg.to_hf_dict(torch_dtype=_TORCH_DTYPE[out_dtype]))
    gen = {k: v for k, v in (("bos_token_id", cfg.bos_token_id),
                              ("eos_token_id", list(cfg.eos_token_id) if isinstance(cfg.eos_token_id, tuple)
                               else cfg.eos_token_id)) if v is not None}
    _write_json(os.path.join(path, "generation_config.json"), gen)
    sync_processes("save_pretrained-done")  # no process goes on before the files are complete


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


__all__ = ["load_pretrained", "save_pretrained", "CheckpointError", "ConfigError"]

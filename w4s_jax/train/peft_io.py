"""LoRA adapters in the PEFT layout that peft, transformers and vLLM load: `adapter_config.json` plus
`adapter_model.safetensors` with one `lora_A` / `lora_B` pair per layer and target module, named
`base_model.model.model.layers.<i>.<self_attn|mlp>.<module>.lora_{A,B}.weight`.

PEFT computes W_hf + (alpha / r) * B @ A with A [r, in] and B [out, r] on the [out, in] HF weight. Our
factors a [L, *in, r], b [L, r, *out] act on our [*in, *out] weight, which flattened is W_hf transposed, so
per layer A = a.reshape(in, r).T and B = b.reshape(r, out).T: the same update, no approximation.
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np

from w4s_jax.models.hf_io import _layer_map
from w4s_jax.models.sharding import host_array, sync_processes
from w4s_jax.train.lora import INPUT_DIMS, lora_shapes

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_PREFIX = "base_model.model.model.layers"


class AdapterError(ValueError):
    """An adapter directory that cannot be used, with the file and the reason named."""


@dataclasses.dataclass
class Adapter:
    factors: dict[str, dict[str, np.ndarray]]  # target -> {"a": [L, *in, r], "b": [L, r, *out]} float32
    rank: int
    alpha: float

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(sorted(self.factors))


def _module_paths(model_config) -> dict[str, str]:
    """target -> module path inside a decoder layer, e.g. "q_proj" -> "self_attn.q_proj"."""
    layer_map = _layer_map(model_config)
    return {t: layer_map[t][0].removesuffix(".weight") for t in INPUT_DIMS}


def save_adapter(path: str, factors: dict, model_config, *, rank: int, alpha: float, base_model: str = "") -> str:
    """Write `factors` (target -> {"a", "b"}) as a PEFT LoRA adapter directory; returns its path.
    Every process must call it (factors may be split over hosts); process 0 writes."""
    from safetensors.numpy import save_file

    paths = _module_paths(model_config)
    tensors = {}
    for t in sorted(factors):
        a, b = (host_array(factors[t][k]).astype(np.float32) for k in ("a", "b"))
        for i in range(a.shape[0]):
            name = f"{_PREFIX}.{i}.{paths[t]}"
            tensors[f"{name}.lora_A.weight"] = np.ascontiguousarray(a[i].reshape(-1, rank).T)
            tensors[f"{name}.lora_B.weight"] = np.ascontiguousarray(b[i].reshape(rank, -1).T)
    if jax.process_index() != 0:
        sync_processes("save_adapter-done")
        return path
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model or None,
        "r": int(rank), "lora_alpha": alpha, "target_modules": sorted(factors), "lora_dropout": 0.0,
        "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
        "modules_to_save": None, "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {},
        "alpha_pattern": {}, "init_lora_weights": True, "inference_mode": True,
    }
    os.makedirs(path, exist_ok=True)
    # each file replaced whole, the weights first: a reader never sees a config without its weights
    tmp = os.path.join(path, WEIGHTS_FILE + ".tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(path, WEIGHTS_FILE))
    tmp = os.path.join(path, CONFIG_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(path, CONFIG_FILE))
    sync_processes("save_adapter-done")  # no process goes on before the files are complete
    return path


def _read_config(path: str) -> dict:
    file = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(file):
        raise AdapterError(f"{path}: no {CONFIG_FILE} (not a PEFT adapter directory)")
    try:
        with open(file) as f:
            cfg = json.load(f)
    except ValueError as e:
        raise AdapterError(f"{file}: not valid JSON ({e})") from None
    problems = []
    if cfg.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type {cfg.get('peft_type')!r} (only LORA)")
    for key in ("use_dora", "use_rslora", "fan_in_fan_out"):
        if cfg.get(key):
            problems.append(f"{key}=true")
    if cfg.get("bias", "none") != "none":
        problems.append(f"bias={cfg['bias']!r} (adapter biases)")
    for key in ("rank_pattern", "alpha_pattern", "modules_to_save"):
        if cfg.get(key):
            problems.append(f"{key} set")
    if not isinstance(cfg.get("r"), int) or cfg["r"] <= 0 or not isinstance(cfg.get("lora_alpha"), (int, float)):
        problems.append("r and lora_alpha must be a positive integer and a number")
    if problems:
        raise AdapterError(f"{file}: unsupported adapter: {'; '.join(problems)}")
    return cfg


def load_adapter(path: str, model_config) -> Adapter:
    """A PEFT LoRA adapter for a model of `model_config`, as our stacked factors. The targets are the modules
    the weights file holds; every layer must have them."""
    from safetensors.numpy import load_file

    path = os.fspath(path)
    cfg = _read_config(path)
    rank, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    file = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(file):
        raise AdapterError(f"{path}: no {WEIGHTS_FILE}")
    tensors = load_file(file)
    by_path = {p: t for t, p in _module_paths(model_config).items()}
    found: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for key, value in tensors.items():
        parts = key.removeprefix(_PREFIX + ".").split(".")
        layer, module, kind = parts[0], ".".join(parts[1:-2]), ".".join(parts[-2:])
        if (not key.startswith(_PREFIX + ".") or not layer.isdigit() or module not in by_path
                or kind not in ("lora_A.weight", "lora_B.weight")):
            raise AdapterError(f"{file}: tensor {key!r} is not a LoRA factor of a decoder layer projection")
        found.setdefault(by_path[module], {}).setdefault(int(layer), {})[kind[5]] = value
    if not found:
        raise AdapterError(f"{file}: holds no LoRA factors")
    L = model_config.num_layers
    shapes = lora_shapes(model_config, tuple(found), rank)
    factors = {}
    for t, layers in sorted(found.items()):
        want = {"A": (rank, int(np.prod(shapes[t]["a"][1:-1]))), "B": (int(np.prod(shapes[t]["b"][2:])), rank)}
        for i in range(L):
            for k in ("A", "B"):
                got = layers.get(i, {}).get(k)
                name = f"{_PREFIX}.{i}.{_module_paths(model_config)[t]}.lora_{k}.weight"
                if got is None:
                    raise AdapterError(f"{file}: {name} is missing (every layer needs {t} factors)")
                if tuple(got.shape) != want[k]:
                    raise AdapterError(f"{file}: {name} has shape {tuple(got.shape)}, the model needs {want[k]} "
                                       f"(r={rank})")
        if set(layers) - set(range(L)):
            raise AdapterError(f"{file}: {t} factors for layers {sorted(set(layers) - set(range(L)))}, "
                               f"the model has {L}")
        a = np.stack([layers[i]["A"].T.reshape(shapes[t]["a"][1:]) for i in range(L)]).astype(np.float32)
        b = np.stack([layers[i]["B"].T.reshape(shapes[t]["b"][1:]) for i in range(L)]).astype(np.float32)
        factors[t] = {"a": a, "b": b}
    return Adapter(factors, rank, alpha)

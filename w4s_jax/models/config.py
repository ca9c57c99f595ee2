"""Architecture config for Qwen2/Qwen2.5 (and the Qwen3 / Llama-3 variants), read from and written to HF
`config.json`.

Hub checkpoints were written by many transformers releases, which spell some fields differently
(`rope_theta` vs `rope_parameters.rope_theta`, `torch_dtype` vs `dtype`, a missing
`num_key_value_heads`, ...). `from_hf_dict` accepts all of them and rejects anything it cannot map.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

# HF architecture name -> our family flag.
ARCHITECTURES = {
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "LlamaForCausalLM": "llama",
}
_MODEL_TYPES = {"qwen2": "qwen2", "qwen3": "qwen3", "llama": "llama"}


class ConfigError(ValueError):
    """A model config that cannot be used, with the file and field named."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 32768
    family: str = "qwen2"  # qwen2 | qwen3 | llama
    # Llama-3 style rope frequency scaling ({"factor", "low_freq_factor", "high_freq_factor",
    # "original_max_position_embeddings"}); None = plain rope.
    rope_scaling: tuple[tuple[str, float], ...] | None = None
    bos_token_id: int | None = None
    eos_token_id: int | tuple[int, ...] | None = None

    @property
    def qkv_bias(self) -> bool:  # Qwen2/2.5 put a bias on q, k and v only
        return self.family == "qwen2"

    @property
    def qk_norm(self) -> bool:  # Qwen3 normalises q and k per head
        return self.family == "qwen3"

    def num_params(self) -> int:
        d, h, kv, hd, f = self.hidden_size, self.num_heads, self.num_kv_heads, self.head_dim, self.intermediate_size
        attn = d * h * hd * 2 + d * kv * hd * 2 + (h * hd + 2 * kv * hd if self.qkv_bias else 0)
        attn += 2 * hd if self.qk_norm else 0
        layer = attn + 3 * d * f + 2 * d
        emb = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + emb + d

    def validate(self, where: str = "config") -> "ModelConfig":
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
                     "num_kv_heads", "head_dim"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{where}: {name} must be positive, got {getattr(self, name)}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"{where}: num_attention_heads ({self.num_heads}) is not a multiple of "
                              f"num_key_value_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise ConfigError(f"{where}: head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.family not in _MODEL_TYPES:
            raise ConfigError(f"{where}: unknown model family {self.family!r}")
        return self

    # ---- Hugging Face config.json -------------------------------------------------------------

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], where: str = "config.json") -> "ModelConfig":
        archs = d.get("architectures") or []
        family = None
        for a in archs:
            if a in ARCHITECTURES:
                family = ARCHITECTURES[a]
                break
        if family is None and archs:
            raise ConfigError(f"{where}: unsupported architecture {archs!r}; supported: {sorted(ARCHITECTURES)}")
        if family is None:
            mt = d.get("model_type")
            if mt not in _MODEL_TYPES:
                raise ConfigError(f"{where}: no 'architectures' and unsupported model_type {mt!r}")
            family = _MODEL_TYPES[mt]

        def need(*names):
            for n in names:
                if n in d and d[n] is not None:
                    return d[n]
            raise ConfigError(f"{where}: missing required field {names[0]!r}")

        hidden = int(need("hidden_size"))
        heads = int(need("num_attention_heads"))
        kv = d.get("num_key_value_heads")
        kv = heads if kv is None else int(kv)  # older configs omit it (= multi-head attention)
        head_dim = d.get("head_dim")
        if head_dim is None:
            if hidden % heads:
                raise ConfigError(f"{where}: hidden_size {hidden} not divisible by num_attention_heads {heads}")
            head_dim = hidden // heads
        # transformers >= 5 moved rope settings into `rope_parameters`; older ones use rope_theta/rope_scaling.
        rope = d.get("rope_parameters") or {}
        theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        scaling = d.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
        scaling_t = None
        if scaling:
            kind = scaling.get("rope_type", scaling.get("type", "default"))
            if kind == "llama3":
                keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
                try:
                    scaling_t = tuple((k, float(scaling[k])) for k in keys)
                except KeyError as e:
                    raise ConfigError(f"{where}: rope_scaling of type llama3 lacks {e.args[0]!r}") from None
            elif kind != "default":
                raise ConfigError(f"{where}: unsupported rope_scaling type {kind!r} (supported: default, llama3)")
        eos = d.get("eos_token_id")
        if isinstance(eos, list):
            eos = tuple(int(e) for e in eos)
        cfg = cls(
            vocab_size=int(need("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(need("intermediate_size")),
            num_layers=int(need("num_hidden_layers")),
            num_heads=heads,
            num_kv_heads=kv,
            head_dim=int(head_dim),
            rope_theta=float(theta),
            rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            max_position_embeddings=int(d.get("max_position_embeddings", 32768)),
            family=family,
            rope_scaling=scaling_t,
            bos_token_id=d.get("bos_token_id"),
            eos_token_id=eos,
        )
        return cfg.validate(where)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "ModelConfig":
        path = os.fspath(path)
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_hf_dict(d, where=path)

    def to_hf_dict(self, torch_dtype: str = "float32") -> dict[str, Any]:
        arch = {v: k for k, v in ARCHITECTURES.items()}[self.family]
        d = {
            "architectures": [arch],
            "model_type": self.family,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_dropout": 0.0,
            "torch_dtype": torch_dtype,
            "use_cache": True,
        }
        if self.family == "qwen2":
            d.update(use_sliding_window=False, sliding_window=None, max_window_layers=self.num_layers)
        if self.family == "llama":
            d.update(attention_bias=False, mlp_bias=False)
        if self.family == "qwen3":
            d.update(attention_bias=False)
        if self.rope_scaling:
            d["rope_scaling"] = dict(self.rope_scaling, rope_type="llama3")
        if self.bos_token_id is not None:
            d["bos_token_id"] = self.bos_token_id
        if self.eos_token_id is not None:
            d["eos_token_id"] = list(self.eos_token_id) if isinstance(self.eos_token_id, tuple) else self.eos_token_id
        return d

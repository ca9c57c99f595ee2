"""What a run trains: every model parameter (`FullTraining`) or LoRA factors on a frozen base
(`LoraTraining`). Both have the same small interface, so the step, the trainer and the benchmarks never
branch on the kind of training:

    split(model)               -> (trainable, frozen) initial values; frozen is {} for full training
    shardings(rules)           -> (trainable shardings, frozen shardings)
    apply(trainable, frozen)   -> (model, forward kwargs): run `target_logprobs(model, ..., **kwargs)`
    merged(trainable, frozen)  -> the inference model (LoRA folded in): policy and Hugging Face exports
    save_trained(trainable, workdir) -> the trained part in its ecosystem format (LoRA: a PEFT adapter in
                                  <workdir>/adapter), or None when the merged model is all there is
    lora                       -> whether the frozen weights get no gradients (FLOP counts)

`trainable` is what the optimizer updates (and donates); `frozen` travels beside it as a non-donated
argument. Both are nested dicts of arrays (Orbax- and jit-friendly); the model object is rebuilt inside
the traced function from an abstract template, so no stale copy of the weights is kept alive.
"""
from __future__ import annotations

import logging
import os

import jax
import jax.numpy as jnp
from flax import nnx

from w4s_jax.models import ConfigError
from w4s_jax.models.sharding import ShardingRules, state_shardings
from w4s_jax.train import lora as lora_lib
from w4s_jax.train import peft_io

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


class _ModelTemplate:
    """The model's structure without its weights: rebuild a model from a nested dict of arrays."""

    def __init__(self, model):
        self.graphdef, state = nnx.split(model)
        self.abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
        self.config = model.config

    def rebuild(self, params: dict):
        state = jax.tree.map(lambda x: x, self.abstract)
        nnx.replace_by_pure_dict(state, params)
        return nnx.merge(self.graphdef, state)

    def shardings(self, rules: ShardingRules) -> dict:
        return nnx.to_pure_dict(state_shardings(self.abstract, rules))


def model_params(model) -> dict:
    """The model's parameters as a nested dict of arrays (the same arrays, no copy)."""
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


class FullTraining:
    """Every model parameter trains; nothing is frozen."""

    lora = False

    def __init__(self, model):
        self.template = _ModelTemplate(model)

    def split(self, model) -> tuple[dict, dict]:
        return model_params(model), {}

    def shardings(self, rules: ShardingRules) -> tuple[dict, dict]:
        return self.template.shardings(rules), {}

    def apply(self, trainable: dict, frozen: dict):
        return self.template.rebuild(trainable), {}

    def merged(self, trainable: dict, frozen: dict):
        return self.template.rebuild(trainable)

    def save_trained(self, trainable: dict, workdir: str) -> str | None:
        return None


class LoraTraining:
    """Low-rank factors a, b per target projection train (W + alpha / rank * a @ b); the base is frozen.

    `init_from` (a PEFT adapter directory) starts from saved factors instead of a fresh a ~ N(0, 1/fan_in),
    b = 0; its rank, alpha and targets then define the adapter."""

    lora = True

    def __init__(self, model, *, targets, rank: int, alpha: float, seed: int = 0, init_from: str = "",
                 base_model: str = ""):
        self.template = _ModelTemplate(model)
        self.seed, self.base_model = seed, base_model
        self.adapter = peft_io.load_adapter(init_from, model.config) if init_from else None
        if self.adapter is not None:
            wanted = (tuple(sorted(targets)), int(rank), float(alpha))
            got = (self.adapter.targets, self.adapter.rank, self.adapter.alpha)
            if wanted != got:
                log.warning("lora.init_from %s: the adapter's targets, rank and alpha %s replace the config's %s",
                            init_from, got, wanted)
            targets, rank, alpha = got
        self.targets = lora_lib.check_targets(targets)
        self.rank, self.alpha = int(rank), float(alpha)
        self.scale = self.alpha / self.rank

    def split(self, model) -> tuple[dict, dict]:
        if self.adapter is not None:
            factors = jax.tree.map(jnp.asarray, self.adapter.factors)
        else:
            factors = lora_lib.init_lora(model.config, self.targets, self.rank, seed=self.seed)
        return factors, model_params(model)

    def shardings(self, rules: ShardingRules) -> tuple[dict, dict]:
        return lora_lib.lora_shardings(self.template.config, self.targets, self.rank, rules), \
            self.template.shardings(rules)

    def apply(self, trainable: dict, frozen: dict):
        return self.template.rebuild(frozen), {"lora": lora_lib.as_model_lora(trainable), "lora_scale": self.scale}

    def merged(self, trainable: dict, frozen: dict):
        return self.template.rebuild(lora_lib.merged_params(frozen, trainable, self.scale))

    def save_trained(self, trainable: dict, workdir: str) -> str:
        return peft_io.save_adapter(os.path.join(workdir, ADAPTER_DIR), trainable, self.template.config,
                                    rank=self.rank, alpha=self.alpha, base_model=self.base_model)


def from_config(cfg, model) -> FullTraining | LoraTraining:
    """The training kind a trainer config asks for (`lora.enabled`, `lora.*`)."""
    if not cfg.lora.enabled:
        return FullTraining(model)
    try:
        return LoraTraining(model, targets=tuple(cfg.lora.targets), rank=cfg.lora.rank, alpha=cfg.lora.alpha,
                            seed=cfg.seed, init_from=cfg.lora.init_from, base_model=cfg.model.path)
    except peft_io.AdapterError as e:
        raise ConfigError(f"config lora.init_from: {e}") from None

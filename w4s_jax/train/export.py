"""Policy exports the rollout service loads: `<workdir>/policy/<step>/` holds the inference parameters only
(LoRA merged) as an Orbax PyTree plus the model's HF `config.json`; `load_policy` reads one back onto any
mesh. `save_pretrained` (Hugging Face layout) is the other export, for transformers / vLLM / SGLang.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from w4s_jax.models import ModelConfig
from w4s_jax.models.build import init_model
from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, state_shardings


def export_policy(model, path: str, *, step: int) -> str:
    """Write the model's parameters and config to `path` (replaced atomically by Orbax)."""
    path = os.path.abspath(path)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(os.path.join(path, "params"), params, force=True)
    if jax.process_index() == 0:
        cfg = model.config.to_hf_dict(torch_dtype=str(jnp.dtype(model.param_dtype)))
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        with open(os.path.join(path, "policy.json"), "w") as f:
            json.dump({"step": step, "format": "orbax-params", "param_dtype": str(jnp.dtype(model.param_dtype))}, f)
    return path


def load_policy(path: str, *, dtype=jnp.bfloat16, param_dtype=None, mesh=None, rules=DEFAULT_RULES,
                remat: str = "none"):
    """A Qwen2 model from a policy export, its parameters restored straight into the mesh's shardings."""
    path = os.path.abspath(path)
    cfg = ModelConfig.from_json_file(os.path.join(path, "config.json"))
    with open(os.path.join(path, "policy.json")) as f:
        stored = json.load(f)["param_dtype"]
    param_dtype = jnp.dtype(param_dtype or stored)
    abstract = nnx.eval_shape(lambda: init_model(cfg, dtype=dtype, param_dtype=param_dtype, mesh=mesh,
                                                  rules=rules, remat=remat))
    graphdef, state = nnx.split(abstract)
    sharding = ShardingRules(mesh, tuple(rules)) if mesh is not None else None
    if sharding is not None:
        shardings = nnx.to_pure_dict(state_shardings(state, sharding))
    else:
        dev = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: dev, nnx.to_pure_dict(state))
    target = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, param_dtype, sharding=s),
                          nnx.to_pure_dict(state), shardings)
    with ocp.StandardCheckpointer() as ckpt:
        params = ckpt.restore(os.path.join(path, "params"), target)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)

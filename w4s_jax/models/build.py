"""Creating models: random init directly into (sharded) device arrays, and resharding."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from w4s_jax.models.config import ModelConfig
from w4s_jax.models.qwen2 import Qwen2
from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, state_shardings


def init_model(config: ModelConfig, *, seed: int = 0, dtype=jnp.float32, param_dtype=None, mesh=None,
               rules=DEFAULT_RULES, remat: str = "none", attn_impl: str = "auto") -> Qwen2:
    """A randomly initialised model. With a mesh, parameters are created already sharded (a 7B model
    never exists unsharded on one device)."""
    param_dtype = dtype if param_dtype is None else param_dtype
    sharding = ShardingRules(mesh, tuple(rules)) if mesh is not None else None

    def make():
        return Qwen2(config, dtype=dtype, param_dtype=param_dtype, remat=remat, attn_impl=attn_impl,
                     sharding=sharding, rngs=nnx.Rngs(seed))

    if sharding is None:
        return make()  # eager: parameters are created on the default device, no compile
    return _jit_init(make, sharding)


def _jit_init(make, sharding: ShardingRules | None) -> Qwen2:
    abstract = nnx.eval_shape(make)
    graphdef, abs_state = nnx.split(abstract)
    out_shardings = state_shardings(abs_state, sharding) if sharding is not None else None
    state = jax.jit(lambda: nnx.state(make()), out_shardings=out_shardings)()
    return nnx.merge(graphdef, state)


def shard_model(model: Qwen2, mesh, rules=DEFAULT_RULES) -> Qwen2:
    """The same parameters placed on `mesh` by the logical rules (activations constrained likewise)."""
    sharding = ShardingRules(mesh, tuple(rules))
    graphdef, state = nnx.split(model)
    state = jax.device_put(state, state_shardings(state, sharding))
    new = nnx.merge(graphdef, state)
    new.sharding = sharding
    return new

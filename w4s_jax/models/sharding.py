"""One Mesh with named axes (data, fsdp, tensor) and logical-axis rules that map parameter and activation
dimensions onto it.

Every parameter carries `logical_axes` metadata (e.g. ("embed", "mlp")); the rules turn those names into a
PartitionSpec for a given mesh. A mesh axis that does not divide a dimension (4 kv heads on tensor=8, a
vocab of 151936 on an odd axis) is dropped for that dimension rather than failing: the dimension is then
replicated along that axis.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# logical name -> mesh axis (or tuple of axes, or None = replicated)
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("layers", None),
    ("act_embed", None),
    ("act_mlp", "tensor"),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_vocab", "tensor"),
    ("cache_length", None),
)


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1, devices: Sequence | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh; one size may be -1 (all remaining devices)."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh sizes {dict(zip(MESH_AXES, sizes))}: at most one may be -1")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"mesh sizes {dict(zip(MESH_AXES, sizes))} do not divide {len(devices)} devices")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {int(np.prod(sizes))} devices, "
                         f"have {len(devices)}")
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def logical_to_spec(names: Sequence[str | None], rules=DEFAULT_RULES, shape: Sequence[int] | None = None,
                    mesh: Mesh | None = None) -> PartitionSpec:
    """Map logical axis names to a PartitionSpec; a mesh axis is used at most once and only where it divides."""
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for i, name in enumerate(names):
        target = table.get(name) if name is not None else None
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        kept = []
        size = shape[i] if shape is not None else None
        for ax in axes:
            if ax in used:
                continue
            n = mesh.shape[ax] if mesh is not None else 1
            if n == 1:
                continue
            if size is not None and size % (n * int(np.prod([mesh.shape[a] for a in kept]))):
                continue
            kept.append(ax)
        used.update(kept)
        spec.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*spec)


@dataclasses.dataclass(frozen=True)
class ShardingRules:
    """A mesh plus the rules; hashable, so a model can hold it as static structure."""

    mesh: Mesh
    rules: tuple = DEFAULT_RULES

    def spec(self, names, shape=None) -> PartitionSpec:
        return logical_to_spec(names, self.rules, shape, self.mesh)

    def named(self, names, shape=None) -> NamedSharding:
        return NamedSharding(self.mesh, self.spec(names, shape))

    def constrain(self, x: jax.Array, names) -> jax.Array:
        return jax.lax.with_sharding_constraint(x, self.named(names, x.shape))


def constrain(x: jax.Array, names, sharding: ShardingRules | None) -> jax.Array:
    """Sharding constraint on an activation; identity when the model has no mesh."""
    return x if sharding is None else sharding.constrain(x, names)


def state_shardings(state, sharding: ShardingRules):
    """NamedSharding for every variable of an nnx State (by its `logical_axes` metadata)."""
    from flax import nnx

    def one(v):
        names = getattr(v, "logical_axes", None)
        if names is None:
            return v.replace(NamedSharding(sharding.mesh, PartitionSpec()))
        return v.replace(sharding.named(names, v.shape))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def host_array(x) -> np.ndarray:
    """A whole (possibly sharded) array as numpy. An array split over several processes (multi-host) is
    gathered collectively: every process must then call this for the same arrays in the same order."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def sync_processes(name: str) -> None:
    """Every process reaches this point before any goes on (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)

"""Shared helpers for the trainer tests: a tiny, single-bucket config and ways to read a run's results."""
from __future__ import annotations

import json
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_REPO, "configs"))

import train as train_configs  # noqa: E402  (configs/train.py)

# Every tiny run in a test process compiles the same init and train-step programs: a persistent
# compilation cache (private to this process) makes the repeats cost seconds instead of tens of seconds.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="w4s-jax-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def tiny_config(workdir, **overrides):
    """The `tiny` preset made cheap to compile: one length bucket, one loss-token buffer size, one device."""
    c = train_configs.get_config("tiny")
    c.workdir = str(workdir)
    c.total_steps = 4
    c.batch_size = 4
    c.log_every = 1
    c.progress = False
    c.data.max_len = 320
    c.data.min_bucket = 320
    c.data.min_loss_cap = 1024
    c.checkpoint.interval = 2
    c.mesh.devices = 1
    c.mesh.fsdp = 1
    for key, value in overrides.items():
        node = c
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return c


def read_metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def policy_params(workdir, step):
    from w4s_jax.train.export import load_policy

    model = load_policy(os.path.join(workdir, "policy", str(step)), dtype=jnp.float32)
    return model, jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def assert_trees_close(a, b, atol):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for (path, x), y in zip(la, lb):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0, err_msg=jax.tree_util.keystr(path))

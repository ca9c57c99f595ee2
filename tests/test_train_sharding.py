"""8 fake CPU devices (fsdp=4 x tensor=2, and data=8) train to the same loss and parameters as 1 device,
with parameters, optimizer state and batch really sharded over the mesh."""
import jax
import numpy as np
import pytest

from train_fixtures import assert_trees_close, policy_params, read_metrics, tiny_config
from w4s_jax.train.trainer import train


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("one"), total_steps=2, batch_size=8)
    train(cfg)
    return cfg.workdir


@pytest.mark.slow
@pytest.mark.parametrize("mesh,accum", [(dict(data=1, fsdp=4, tensor=2), 2), (dict(data=8, fsdp=1, tensor=1), 1)])
def test_sharded_training_equals_single_device(single, tmp_path, mesh, accum):
    assert len(jax.devices()) == 8
    cfg = tiny_config(tmp_path / "many", total_steps=2, batch_size=8, accum_steps=accum,
                      **{"mesh.devices": 8, **{f"mesh.{k}": v for k, v in mesh.items()}})
    summary = train(cfg)
    if mesh["fsdp"] > 1:  # parameters and Adam moments really are spread over the mesh
        assert summary["sharded_fraction"]["params"] > 0.9 and summary["sharded_fraction"]["opt"] > 0.9
    want, got = read_metrics(single), read_metrics(cfg.workdir)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
        np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-4)
    _, p1 = policy_params(single, 2)
    _, p8 = policy_params(cfg.workdir, 2)
    assert_trees_close(p8, p1, atol=2e-5)

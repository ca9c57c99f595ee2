"""Config presets and validation: every bad value is one clear error naming the key."""
import pytest

from train_fixtures import tiny_config, train_configs
from w4s_jax.models import ConfigError
from w4s_jax.train.setup import validate_config


def test_presets_build_and_are_locked():
    for name in train_configs.PRESETS:
        c = train_configs.get_config(name)
        assert c.preset == name
        with pytest.raises(AttributeError, match="Did you mean"):
            c.optim.lrr = 1.0
    big = train_configs.get_config("qwen2.5-coder-7b-full-1gpu")
    assert big.optim.state_dtype == "bfloat16" and big.model.param_dtype == "bfloat16" and big.model.remat == "full"
    assert train_configs.get_config("qwen2.5-coder-7b-lora-1gpu").lora.enabled
    with pytest.raises(ValueError, match="unknown train preset"):
        train_configs.get_config("tinyy")


@pytest.mark.parametrize("key,value,msg", [
    ("objective.name", "rwrr", "objective.name: unknown objective 'rwrr'"),
    ("accum_steps", 3, "accum_steps: must divide batch_size=4"),
    ("model.remat", "fulll", "model.remat: unknown policy"),
    ("model.dtype", "fp8", "model.dtype: must be one of"),
    ("data.loss_on", "assistant", "data.loss_on: must be one of"),
    ("lora.targets", ("q_proj", "qkv"), "lora.targets: ['qkv'] not among"),
    ("data.synthetic", False, "data.path: set a trajectory file"),
    ("accum_dtype", "fp32", "accum_dtype: must be one of"),
    ("data.eval_fraction", 1.0, "data.eval_fraction: must be in"),
    ("lora.init_from", "/nonexistent/adapter", "lora.init_from: '/nonexistent/adapter' is not a directory"),
])
def test_bad_values(tmp_path, key, value, msg):
    extra = {"lora.enabled": True} if key.startswith("lora") else {}
    cfg = tiny_config(tmp_path, **{key: value}, **extra)
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        validate_config(cfg)


def test_key_combinations(tmp_path):
    cfg = tiny_config(tmp_path, **{"data.eval_fraction": 0.2, "data.eval_path": str(tmp_path)})
    with pytest.raises(ConfigError, match="data.eval_path: set data.eval_path or data.eval_fraction, not both"):
        validate_config(cfg)
    cfg = tiny_config(tmp_path, **{"lora.init_from": str(tmp_path)})
    with pytest.raises(ConfigError, match="lora.init_from: needs lora.enabled=True"):
        validate_config(cfg)


def test_bad_objective_option(tmp_path):
    cfg = tiny_config(tmp_path)
    with pytest.raises(TypeError, match="tau"):  # ConfigDict keeps each field's type
        cfg.objective.rwr.tau = "hot"
    validate_config(tiny_config(tmp_path))


@pytest.mark.parametrize("preset,limit_gb", [("qwen2.5-coder-7b-full-1gpu", 64), ("qwen2.5-coder-7b-lora-1gpu", 17)])
def test_7b_presets_train_state_fits_one_80gb_gpu(preset, limit_gb):
    """Parameters + trainable gradients + optimizer state of the 7B presets, from shapes alone: what must
    stay resident on one 80 GB GPU before activations (remat keeps those small)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from w4s_jax.models import get_preset, init_model
    from w4s_jax.train.lora import init_lora
    from w4s_jax.train.optim import make_optimizer

    cfg = train_configs.get_config(preset)
    model_cfg = get_preset(cfg.model.preset)
    model = nnx.eval_shape(lambda: init_model(model_cfg, dtype=jnp.dtype(cfg.model.dtype),
                                              param_dtype=jnp.dtype(cfg.model.param_dtype)))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    trainable = (jax.eval_shape(lambda: init_lora(model_cfg, tuple(cfg.lora.targets), cfg.lora.rank))
                 if cfg.lora.enabled else params)
    opt = jax.eval_shape(make_optimizer(cfg.optim, cfg.total_steps).init, trainable)
    nbytes = lambda t: sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(t))
    total = nbytes(params) + (nbytes(trainable) if cfg.lora.enabled else 0) + nbytes(trainable) + nbytes(opt)
    assert total / 1e9 < limit_gb, total / 1e9
    print(f"{preset}: {total / 1e9:.1f} GB resident train state")

"""The rwr loss and gradient equal the public W4S PyTorch formulation on the same weights and batch:
per example, mean token cross-entropy over its loss tokens times exp(r / tau); averaged over the batch
(a per-example loop over a transformers model with full logits)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from hf_reference import make_hf_model
from w4s_jax.models import load_pretrained, save_pretrained, target_logprobs
from w4s_jax.models.sharding import ShardingRules, make_mesh
from w4s_jax.train import objectives, optim, step as step_lib
from w4s_jax.train.batches import assemble
from w4s_jax.train.data import Example

TAU = 0.4


def _examples(vocab, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, (n, n_act, r) in enumerate([(23, 7, 1.0), (31, 9, 0.5), (17, 5, 0.0), (28, 12, 0.0)]):
        ids = rng.integers(0, vocab, size=n).astype(np.int32)
        mask = np.zeros(n, bool)
        mask[n - n_act - 1:n - 1] = True  # targets: the last n_act tokens
        out.append(Example(ids=ids, loss_mask=mask, reward=r, state=i // 2, chosen=r > 0))
    return out


def _torch_reference(hf, examples):
    hf.zero_grad(set_to_none=True)
    losses = []
    for e in examples:
        ids = torch.as_tensor(e.ids[None].astype(np.int64))
        labels = torch.full_like(ids, -100)
        tgt = np.where(np.concatenate([[False], e.loss_mask[:-1]]), e.ids, -100)
        labels[0] = torch.as_tensor(tgt.astype(np.int64))
        logits = hf(input_ids=ids).logits
        ce = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100)
        losses.append(ce * np.exp(e.reward / TAU))
    loss = torch.stack(losses).mean()
    loss.backward()
    return float(loss.detach()), {n: p.grad.numpy() for n, p in hf.named_parameters()}


@pytest.mark.parametrize("tie,accum", [(False, 1), (True, 2)])
def test_rwr_loss_and_grad_match_public_pytorch_formulation(tmp_path, tie, accum):
    hf = make_hf_model("qwen2", tie=tie, vocab=160, hidden=64, inter=96, heads=4, kv_heads=2).float()
    hf.save_pretrained(tmp_path / "hf")
    model = load_pretrained(tmp_path / "hf", dtype=jnp.float32)
    examples = _examples(160)
    want_loss, want_grads = _torch_reference(hf, examples)

    rules = ShardingRules(make_mesh(1, 1, 1, devices=jax.devices()[:1]))
    obj = objectives.get("rwr")(tau=TAU)
    batch = assemble(examples, list(range(4)), 4, 32, 1, [[i] for i in range(4)])
    graphdef, params, template = step_lib.split_model(model)
    # a zero learning rate so the step reports the gradient at the given weights
    cfg = type("C", (), dict(lr=0.0, min_lr_ratio=0.0, warmup_steps=0, b1=0.9, b2=0.999, eps=1e-8,
                              weight_decay=0.0, grad_clip=0.0, state_dtype=None))
    tx = optim.make_optimizer(cfg, 10)
    spec = step_lib.StepSpec(graphdef, obj, accum_steps=accum, chunk_size=16, lora_scale=None)

    db = step_lib.device_batch(batch, rules, obj)

    # the gradient of the objective, mapped back to the HF layout by save_pretrained
    def loss_of(p):
        m = step_lib.rebuild(graphdef, template, p)
        lp = target_logprobs(m, db["input_ids"], db["targets"], db["loss_mask"], max_tokens=64, chunk_size=16)
        return objectives.batch_loss(obj, lp, db)[0]

    loss, grads = jax.value_and_grad(loss_of)(params)
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-4, atol=1e-4)
    save_pretrained(step_lib.rebuild(graphdef, template, grads), tmp_path / "grads")
    got = load_file(str(tmp_path / "grads" / "model.safetensors"))
    assert set(want_grads) <= set(got) | ({"lm_head.weight"} if tie else set())
    for name, g in want_grads.items():
        if tie and name == "lm_head.weight":
            continue
        scale = max(1.0, float(np.abs(g).max()))
        np.testing.assert_allclose(got[name], g, atol=1e-4 * scale, rtol=1e-4, err_msg=name)

    # the train step (with accumulation) reports the same loss
    state = {"params": params, "opt": tx.init(params), "step": jnp.int32(0), "rng": jax.random.PRNGKey(0)}
    _, metrics = step_lib.make_train_step(spec, tx, template)(state, None, db, max_tokens=64)
    np.testing.assert_allclose(float(metrics["loss"]), want_loss, rtol=1e-4, atol=1e-4)

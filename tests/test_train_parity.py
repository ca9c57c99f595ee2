"""The trainer's loss, gradient and optimizer step equal the public W4S PyTorch formulation on the same
weights and batch: per example, mean token cross-entropy over its loss tokens times exp(r / tau), averaged
over the batch (a per-example loop over a transformers model with full logits), then global-norm clipping
and torch AdamW. Everything on our side goes through `step.loss`, the function the jitted train step runs."""
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from hf_reference import make_hf_model
from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.models import load_pretrained, save_pretrained
from w4s_jax.models.sharding import ShardingRules, make_mesh
from w4s_jax.train import objectives, optim, step as step_lib
from w4s_jax.train.batches import assemble
from w4s_jax.train.data import Example, load_examples
from w4s_jax.train.synthetic import synthetic_records
from w4s_jax.train.trainable import FullTraining

TAU = 0.4
EOT = "<|im_end|>"


def _examples(vocab, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, (n, n_act, r) in enumerate([(23, 7, 1.0), (31, 9, 0.5), (17, 5, 0.0), (28, 12, 0.0)]):
        ids = rng.integers(0, vocab, size=n).astype(np.int32)
        mask = np.zeros(n, bool)
        mask[n - n_act - 1:n - 1] = True  # targets: the last n_act tokens
        out.append(Example(ids=ids, loss_mask=mask, reward=r, state=i // 2, chosen=r > 0))
    return out


def _labels_from_mask(e):
    return np.where(np.concatenate([[False], e.loss_mask[:-1]]), e.ids, -100)


def _torch_loss(hf, sequences):
    """sequences: (ids, labels with -100 off the loss, reward); mean_i exp(r_i / tau) * CE_i."""
    losses = []
    for ids, labels, reward in sequences:
        logits = hf(input_ids=torch.as_tensor(np.asarray(ids, np.int64)[None])).logits
        ce = torch.nn.functional.cross_entropy(logits[0, :-1], torch.as_tensor(np.asarray(labels[1:], np.int64)),
                                               ignore_index=-100)
        losses.append(ce * np.exp(reward / TAU))
    return torch.stack(losses).mean()


def _setup(tmp_path, hf, examples):
    hf.save_pretrained(tmp_path / "hf")
    model = load_pretrained(tmp_path / "hf", dtype=jnp.float32)
    rules = ShardingRules(make_mesh(1, 1, 1, devices=jax.devices()[:1]))
    obj = objectives.get("rwr")(tau=TAU)
    n = len(examples)
    length = max(len(e) for e in examples)
    batch = step_lib.device_batch(assemble(examples, list(range(n)), n, length, 1, [[i] for i in range(n)]), rules, obj)
    return model, obj, batch, n * length


def _hf_layout(training, params, path):
    """Our parameter tree (or a gradient tree of the same shape) in HF names, via save_pretrained."""
    save_pretrained(training.merged(params, {}), path)
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("tie,accum", [(False, 1), (True, 2)])
def test_rwr_loss_and_grad_match_public_pytorch_formulation(tmp_path, tie, accum):
    hf = make_hf_model("qwen2", tie=tie, vocab=160, hidden=64, inter=96, heads=4, kv_heads=2).float()
    examples = _examples(160)
    hf.zero_grad(set_to_none=True)
    want = _torch_loss(hf, [(e.ids, _labels_from_mask(e), e.reward) for e in examples])
    want.backward()
    want_loss, want_grads = float(want.detach()), {n: p.grad.numpy() for n, p in hf.named_parameters()}

    model, obj, batch, max_tokens = _setup(tmp_path, hf, examples)
    training = FullTraining(model)
    params, frozen = training.split(model)
    spec = step_lib.StepSpec(training, obj, accum_steps=accum, chunk_size=16)
    # the gradient the train step computes (`step.loss` through `step.gradients`, accumulated over micro-batches)
    grads, loss, _ = jax.jit(lambda p, f, b: step_lib.gradients(spec, p, f, b, 64))(params, frozen, batch)
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-4, atol=1e-4)
    got = _hf_layout(training, grads, tmp_path / "grads")
    assert set(want_grads) <= set(got) | ({"lm_head.weight"} if tie else set())
    for name, g in want_grads.items():
        if tie and name == "lm_head.weight":
            continue
        scale = max(1.0, float(np.abs(g).max()))
        np.testing.assert_allclose(got[name], g, atol=1e-4 * scale, rtol=1e-4, err_msg=name)


def _chat_labels(tok, record, ids, loss_on):
    """Loss labels found in the rendered *text*, independently of our token-level masks: the characters of
    the action (+ end of turn), and with all_assistant those of every earlier assistant turn."""
    state = tok.apply_chat_template(record["messages"], tokenize=False, add_generation_prompt=True)
    text = state + record["action"] + EOT
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert enc["input_ids"] == [int(i) for i in ids]
    spans = [(len(state), len(text))]
    if loss_on == "all_assistant":
        at = 0
        for m in record["messages"]:
            if m["role"] == "assistant":
                head = "<|im_start|>assistant\n"
                start = text.index(head + m["content"] + EOT, at) + len(head)
                spans.append((start, start + len(m["content"]) + len(EOT)))
                at = spans[-1][1]
    return np.array([i if any(s <= a < e for s, e in spans) else -100
                     for i, (a, _) in zip(ids, enc["offset_mapping"])])


@pytest.mark.parametrize("loss_on", ["action", "all_assistant"])
def test_one_optimizer_step_matches_torch_adamw(tmp_path, loss_on):
    """Parameters after one real update (warmup's first learning rate, clipping active, decoupled weight
    decay off the norms and biases) equal torch's on the public formulation."""
    tok = make_tiny_tokenizer()
    records = synthetic_records(episodes=2, turns=2, candidates=2, seed=3)
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    pick = [2, 3, 6, 7]  # turn 1 of both episodes: one earlier assistant turn in the state
    loaded = load_examples(str(path), tok, max_len=1024, loss_on=loss_on)
    examples = [loaded[i] for i in pick]
    labels = [_chat_labels(tok, records[i], e.ids, loss_on) for i, e in zip(pick, examples)]
    for lab, e in zip(labels, examples):  # our masks say the same
        np.testing.assert_array_equal(lab[1:] != -100, e.loss_mask[:-1])

    hf = make_hf_model("qwen2", vocab=320, hidden=64, inter=96, heads=4, kv_heads=2, seed=1).float()
    model, obj, batch, _ = _setup(tmp_path, hf, examples)
    cfg = types.SimpleNamespace(lr=4e-3, min_lr_ratio=0.1, warmup_steps=4, b1=0.9, b2=0.95, eps=1e-8,
                                weight_decay=0.1, grad_clip=0.5, state_dtype="")
    lr_first = float(optim.schedule(cfg, 20)(0))
    assert lr_first == pytest.approx(4e-3 / 4)

    # torch: the public formulation, clip_grad_norm_, AdamW with decay on all but norms and biases
    no_decay = lambda name: name.endswith("bias") or name.endswith("norm.weight")
    named = list(hf.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if not no_decay(n)], "weight_decay": cfg.weight_decay},
                             {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0}],
                            lr=lr_first, betas=(cfg.b1, cfg.b2), eps=cfg.eps)
    want = _torch_loss(hf, [(e.ids, lab, e.reward) for e, lab in zip(examples, labels)])
    want.backward()
    torch_norm = float(torch.nn.utils.clip_grad_norm_(hf.parameters(), cfg.grad_clip))
    opt.step()
    after = {n: p.detach().numpy() for n, p in hf.named_parameters()}

    training = FullTraining(model)
    params, frozen = training.split(model)
    before = _hf_layout(training, params, tmp_path / "before")
    tx = optim.make_optimizer(cfg, 20)
    spec = step_lib.StepSpec(training, obj, accum_steps=2, chunk_size=64)
    state = {"params": params, "opt": tx.init(params), "step": jnp.int32(0)}
    state, metrics = step_lib.make_train_step(spec, tx)(state, frozen, batch, max_tokens=int(batch["loss_mask"].sum()))
    np.testing.assert_allclose(float(metrics["loss"]), float(want.detach()), rtol=1e-4)
    np.testing.assert_allclose(float(metrics["grad_norm"]), torch_norm, rtol=1e-4)
    assert torch_norm > 2 * cfg.grad_clip  # clipping is active
    got = _hf_layout(training, state["params"], tmp_path / "after")
    moved = 0
    for name, w in after.items():
        # a first Adam step moves each weight by about lr: compare to a small fraction of that
        np.testing.assert_allclose(got[name], w, atol=2e-2 * lr_first, rtol=0, err_msg=name)
        moved += int((np.abs(w - before[name]) > 0.5 * lr_first).sum())
    assert moved > 0.5 * sum(w.size for w in after.values())

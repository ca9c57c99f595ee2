"""End-to-end tiny runs: learning, held-out evaluation, exact resume, stop_after, policy export, dpo (LoRA:
test_train_lora.py)."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from train_fixtures import assert_trees_close, policy_params, read_metrics, tiny_config
from w4s_jax.models import get_preset, init_model, target_logprobs
from w4s_jax.train.batches import BatchPlan
from w4s_jax.train.setup import build_data, build_tokenizer
from w4s_jax.train import objectives
from w4s_jax.train.trainer import train


def _dataset_stats(model, cfg):
    """Per-example mean NLL over the whole dataset, plus rewards."""
    tok = build_tokenizer(cfg)
    data = build_data(cfg, tok, objectives.from_config(cfg.objective), model.config.vocab_size)
    plan = BatchPlan(data.examples, batch_size=len(data.examples), max_len=cfg.data.max_len, seed=0,
                     min_bucket=cfg.data.max_len)
    b = plan.arrays(0)
    lp = jax.jit(lambda m, i, t, k: target_logprobs(m, i, t, k))(model, b["input_ids"], b["targets"], b["loss_mask"])
    nll = -(np.asarray(lp) * b["loss_mask"]).sum(1) / b["loss_mask"].sum(1)
    return nll, b["reward"]


def _tensorboard_tags(workdir):
    """Scalar tags in the run's TensorBoard event files (TFRecord framing: length, crc, event, crc)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for name in os.listdir(os.path.join(workdir, "tensorboard")):
        data = open(os.path.join(workdir, "tensorboard", name), "rb").read()
        at = 0
        while at < len(data):
            (n,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + n])
            tags |= {v.tag for v in event.summary.value}
            at += 12 + n + 4
    return tags


def _held_out_nll(model, examples):
    """Per-example mean NLL of the action tokens from the model's full logits (numpy log-softmax); rows
    right-padded into one call (causal: padding never reaches a real token)."""
    ids = np.zeros((len(examples), max(len(e) for e in examples)), np.int32)
    for r, e in enumerate(examples):
        ids[r, :len(e)] = e.ids
    all_logits = np.asarray(model(ids), np.float64)
    out = []
    for e, logits in zip(examples, all_logits):
        logp = logits - logits.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        t = np.nonzero(e.loss_mask)[0]
        out.append(-logp[t, e.ids[t + 1]].mean())
    return np.array(out)


def test_tiny_rwr_run_lowers_weighted_loss_and_ranks_rewarded_actions_up(tmp_path):
    cfg = tiny_config(tmp_path / "run", total_steps=20, batch_size=8, eval_every=5,
                      **{"optim.lr": 1e-2, "data.eval_fraction": 0.2})
    summary = train(cfg)
    assert summary["step"] == 20 and not summary["preempted"]
    rows = read_metrics(cfg.workdir)
    assert [r["step"] for r in rows] == list(range(1, 21))
    for key in ("loss", "nll", "weight", "grad_norm", "tokens_per_s", "lr", "loss_tokens"):
        assert all(np.isfinite(r[key]) for r in rows), key

    # held-out episodes, evaluated every 5 steps: to metrics.jsonl and TensorBoard
    held = build_data(cfg, build_tokenizer(cfg), objectives.from_config(cfg.objective), 512).held_out
    buckets = {f"eval/nll_reward_{r:g}" for r in {e.reward for e in held}}
    evaluated = [r for r in rows if "eval/nll" in r]
    assert [r["step"] for r in evaluated] == [5, 10, 15, 20]
    assert all(buckets | {"eval/nll", "eval/weighted_nll"} <= set(r) for r in evaluated)
    assert {"eval/nll", "eval/weighted_nll", "train/loss"} | buckets <= _tensorboard_tags(cfg.workdir)
    after, _ = policy_params(cfg.workdir, 20)
    nll = _held_out_nll(after, held)
    reward = np.array([e.reward for e in held])
    last = evaluated[-1]
    np.testing.assert_allclose(last["eval/nll"], nll.mean(), rtol=1e-4)
    np.testing.assert_allclose(last["eval/weighted_nll"], (np.exp(reward / 0.4) * nll).mean(), rtol=1e-4)
    for r in set(reward):
        np.testing.assert_allclose(last[f"eval/nll_reward_{r:g}"], nll[reward == r].mean(), rtol=1e-4)
    assert last["eval/weighted_nll"] < evaluated[0]["eval/weighted_nll"]  # the held-out actions come from the same pool

    before = init_model(get_preset("tiny"), seed=cfg.seed, dtype=jnp.float32)
    after, _ = policy_params(cfg.workdir, 20)
    nll0, reward = _dataset_stats(before, cfg)
    nll1, _ = _dataset_stats(after, cfg)
    w = np.exp(reward / 0.4)
    assert (w * nll1).mean() < 0.5 * (w * nll0).mean()
    gap = lambda nll: nll[reward == 0].mean() - nll[reward == 1].mean()  # > 0: rewarded actions likelier
    assert gap(nll1) > gap(nll0) + 0.1, (gap(nll0), gap(nll1))


def test_resume_equals_straight_run(tmp_path):
    straight = tiny_config(tmp_path / "a")
    train(straight)
    resumed = tiny_config(tmp_path / "b", stop_after=2)
    first = train(resumed)
    assert first["step"] == 2 and not os.path.exists(os.path.join(resumed.workdir, "policy"))
    second = train(tiny_config(tmp_path / "b", stop_after=0))
    assert second["step"] == 4
    _, pa = policy_params(straight.workdir, 4)
    _, pb = policy_params(resumed.workdir, 4)
    assert_trees_close(pa, pb, atol=1e-6)
    la = [r["loss"] for r in read_metrics(straight.workdir)]
    lb = [r["loss"] for r in read_metrics(resumed.workdir)]
    np.testing.assert_allclose(la, lb, rtol=1e-6)
    # a finished run rerun is a no-op that keeps its results
    assert train(tiny_config(tmp_path / "b"))["step"] == 4
    meta = json.load(open(os.path.join(resumed.workdir, "checkpoints", "4", "meta", "metadata")))
    assert meta["data_position"] == 4 and meta["config"]["preset"] == "tiny"


def test_dpo_starts_at_log2_against_its_frozen_reference(tmp_path):
    cfg = tiny_config(tmp_path / "dpo", total_steps=3, **{"objective.name": "dpo", "objective.dpo.beta": 0.5,
                                                           "optim.lr": 1e-2})
    summary = train(cfg)
    assert summary["data"]["pairs"] > 0
    rows = read_metrics(cfg.workdir)
    # at step 1 the policy is the reference: every margin is 0, the loss log 2
    np.testing.assert_allclose(rows[0]["loss"], np.log(2.0), atol=1e-4)  # fp32 sums of ~100 log-probs
    np.testing.assert_allclose(rows[0]["margin"], 0.0, atol=1e-4)
    assert rows[-1]["margin"] > 0 and rows[-1]["loss"] < np.log(2.0)

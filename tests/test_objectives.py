"""Each objective against a numpy reference on a hand-made batch of per-token log-probs."""
import jax.numpy as jnp
import numpy as np
import pytest

from w4s_jax.train import objectives
from w4s_jax.train.objectives import add_weights, batch_loss


def _batch():
    # 4 rows (2 states x 2 candidates), 6 target positions; row 3 is padding
    logp = np.array([[0, -1.0, -2.0, -0.5, 0, 0],
                     [0, 0, -3.0, -1.0, -1.0, 0],
                     [-0.2, -0.4, 0, 0, 0, 0],
                     [-9.0, -9.0, -9.0, 0, 0, 0]], np.float32)
    mask = np.array([[0, 1, 1, 1, 0, 0],
                     [0, 0, 1, 1, 1, 0],
                     [1, 1, 0, 0, 0, 0],
                     [1, 1, 1, 0, 0, 0]], bool)
    batch = {"loss_mask": mask, "reward": np.array([1.0, 0.0, 0.5, 7.0], np.float32),
             "advantage": np.array([0.5, -0.5, 0.0, 0.0], np.float32),
             "ref_logprob": np.array([-3.0, -4.0, -1.0, 0.0], np.float32),
             "chosen": np.array([1, 0, 1, 0], bool), "unit_mask": np.array([1, 1, 1, 0], bool)}
    return logp, batch


def _nll(logp, mask):
    return np.array([-(lp[m]).mean() for lp, m in zip(logp, mask)])


def _run(obj, logp, batch):
    b = add_weights(obj, batch)
    loss, metrics = batch_loss(obj, jnp.asarray(logp), {k: jnp.asarray(v) for k, v in b.items()})
    return float(loss), {k: float(v) for k, v in metrics.items()}


def test_rwr_matches_numpy():
    logp, batch = _batch()
    nll = _nll(logp, batch["loss_mask"])[:3]
    w = np.exp(batch["reward"][:3] / 0.4)
    loss, m = _run(objectives.get("rwr")(), logp, batch)
    np.testing.assert_allclose(loss, (w * nll).mean(), rtol=1e-6)
    np.testing.assert_allclose(m["nll"], nll.mean(), rtol=1e-6)
    np.testing.assert_allclose(m["weight"], w.mean(), rtol=1e-6)
    # self-normalised and clipped weights
    wc = np.minimum(np.exp(batch["reward"][:3] / 0.25), 10.0)
    wc = wc / wc.mean()
    loss, _ = _run(objectives.get("rwr")(tau=0.25, max_weight=10.0, self_normalize=True), logp, batch)
    np.testing.assert_allclose(loss, (wc * nll).mean(), rtol=1e-6)


def test_sft_filters_and_averages():
    logp, batch = _batch()
    sft = objectives.get("sft")()
    rec = lambda chosen, reward: type("R", (), {"chosen": chosen, "reward": reward})
    assert sft.keep(rec(True, 0.0)) and not sft.keep(rec(False, 1.0))
    by_reward = objectives.get("sft")(filter="reward", threshold=0.4)
    assert by_reward.keep(rec(False, 0.5)) and not by_reward.keep(rec(True, 0.4))
    loss, _ = _run(sft, logp, batch)
    np.testing.assert_allclose(loss, _nll(logp, batch["loss_mask"])[:3].mean(), rtol=1e-6)


def test_awr_uses_state_baseline():
    logp, batch = _batch()
    nll = _nll(logp, batch["loss_mask"])[:3]
    w = np.minimum(np.exp(batch["advantage"][:3] / 0.5), 2.0)
    loss, _ = _run(objectives.get("awr")(beta=0.5, max_weight=2.0), logp, batch)
    np.testing.assert_allclose(loss, (w * nll).mean(), rtol=1e-6)


def test_dpo_matches_numpy():
    logp, batch = _batch()
    batch["unit_mask"] = np.array([1, 1, 1, 1], bool)  # pairs (0, 1) and (2, 3)
    seq = (logp * batch["loss_mask"]).sum(1) - batch["ref_logprob"]
    z = 0.5 * np.array([seq[0] - seq[1], seq[2] - seq[3]])
    want = np.mean(np.log1p(np.exp(-z)))
    loss, m = _run(objectives.get("dpo")(beta=0.5), logp, batch)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], np.mean(z > 0))
    np.testing.assert_allclose(m["margin"], z.mean(), rtol=1e-6)
    # a padded pair counts for nothing
    batch["unit_mask"] = np.array([1, 1, 0, 0], bool)
    loss, _ = _run(objectives.get("dpo")(beta=0.5), logp, batch)
    np.testing.assert_allclose(loss, np.log1p(np.exp(-z[0])), rtol=1e-6)


def test_registry_and_options():
    assert objectives.names() == ["awr", "dpo", "rwr", "sft"]
    with pytest.raises(ValueError, match="unknown objective 'ppo'"):
        objectives.get("ppo")
    with pytest.raises(ValueError, match="unknown option"):
        objectives.from_config({"name": "rwr", "rwr": {"taux": 1.0}})
    assert objectives.from_config({"name": "rwr", "rwr": {"tau": 0.2}}).tau == 0.2

"""Training objectives on per-token log-probs of the target tokens (never full [B, T, V] logits).

Each objective turns `logp` [R, T] (log pi(target) at loss positions, 0 elsewhere) and a batch into one
loss term per row. The trainer divides the sum of the terms by the number of units (examples, or pairs
for dpo) in the *global* batch, so gradient accumulation over micro-batches gives exactly the full-batch
loss. Per-example weights depend only on rewards, so they are computed on the host over the whole global
batch (`weights`), which keeps self-normalisation exact under accumulation too.

    rwr (RLAO):  L = mean_i w_i * mean_{t in action_i} -log pi(a_t),   w_i = exp(r_i / tau)
    sft:         the same with w_i = 1, on chosen candidates (or reward above a threshold)
    awr:         w_i = exp(A_i / beta), A_i = r_i - mean reward of the candidates of the same state
    dpo:         L = mean_pairs -log sigmoid(beta * [(lp_w - ref_w) - (lp_l - ref_l)])
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from w4s_jax.trajectories import Record

Array = jax.Array


def example_nll(logp: Array, loss_mask: Array) -> Array:
    """Per-row mean negative log-likelihood over the loss tokens [R] (0 for rows without any)."""
    m = loss_mask.astype(jnp.float32)
    return -(logp * m).sum(-1) / jnp.maximum(m.sum(-1), 1.0)


def _finish_weights(w: np.ndarray, unit_mask: np.ndarray, max_weight: float, self_normalize: bool) -> np.ndarray:
    w = np.where(unit_mask, w, 0.0)
    if max_weight and max_weight > 0:
        w = np.minimum(w, max_weight)
    if self_normalize and unit_mask.any():
        w = w / w[unit_mask].mean()
    return w.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class WeightedRegression:
    """Shared form of rwr/sft/awr: sum_i w_i * nll_i over examples."""

    pairwise = False
    needs_reference = False

    def keep(self, record: Record) -> bool:
        return True

    def weights(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def row_terms(self, logp: Array, batch: dict) -> tuple[Array, dict[str, Array]]:
        nll = example_nll(logp, batch["loss_mask"])
        valid = batch["unit_mask"].astype(jnp.float32)
        w = batch["weight"]
        return w * nll * valid, {"nll": nll * valid, "weight": w * valid}


@dataclasses.dataclass(frozen=True)
class RWR(WeightedRegression):
    """Reward-weighted regression, the RLAO objective of the paper."""

    tau: float = 0.4
    self_normalize: bool = False
    max_weight: float = 0.0  # 0 = no clipping

    def weights(self, batch):
        w = np.exp(batch["reward"].astype(np.float64) / self.tau)
        return _finish_weights(w, batch["unit_mask"], self.max_weight, self.self_normalize)


@dataclasses.dataclass(frozen=True)
class SFT(WeightedRegression):
    """Filtered behaviour cloning: chosen candidates (filter="chosen") or reward > threshold."""

    filter: str = "chosen"
    threshold: float = 0.0

    def __post_init__(self):
        if self.filter not in ("chosen", "reward"):
            raise ValueError(f"sft filter must be 'chosen' or 'reward', got {self.filter!r}")

    def keep(self, record):
        return record.chosen if self.filter == "chosen" else record.reward > self.threshold

    def weights(self, batch):
        return _finish_weights(np.ones(batch["reward"].shape), batch["unit_mask"], 0.0, False)


@dataclasses.dataclass(frozen=True)
class AWR(WeightedRegression):
    """Advantage-weighted regression; the baseline is the mean reward of the state's candidates."""

    beta: float = 0.4
    self_normalize: bool = False
    max_weight: float = 20.0

    def weights(self, batch):
        w = np.exp(batch["advantage"].astype(np.float64) / self.beta)
        return _finish_weights(w, batch["unit_mask"], self.max_weight, self.self_normalize)


@dataclasses.dataclass(frozen=True)
class DPO:
    """Direct preference optimisation on (higher, lower reward) candidate pairs of the same state, stored
    in rows (2k, 2k + 1); reference log-probs come from the frozen starting policy (batch["ref_logprob"])."""

    beta: float = 0.1
    margin: float = 0.0           # minimum reward gap for a pair
    max_pairs_per_state: int = 4
    pairwise = True
    needs_reference = True

    def keep(self, record):
        return True

    def weights(self, batch):
        return batch["unit_mask"].astype(np.float32)

    def row_terms(self, logp, batch):
        seq = (logp * batch["loss_mask"]).sum(-1) - batch["ref_logprob"]
        R = seq.shape[0]
        pair = seq.reshape(R // 2, 2)
        valid = batch["unit_mask"].reshape(R // 2, 2)[:, 0].astype(jnp.float32)
        z = self.beta * (pair[:, 0] - pair[:, 1])
        loss = -jax.nn.log_sigmoid(z) * valid
        # one term per pair, on the pair's first row
        to_rows = lambda x: jnp.stack([x, jnp.zeros_like(x)], axis=1).reshape(R)
        nll = example_nll(logp, batch["loss_mask"]).reshape(R // 2, 2)[:, 0] * valid
        return to_rows(loss), {"nll": to_rows(nll), "margin": to_rows(z * valid),
                               "accuracy": to_rows((z > 0).astype(jnp.float32) * valid),
                               "weight": to_rows(valid)}


_REGISTRY = {"rwr": RWR, "sft": SFT, "awr": AWR, "dpo": DPO}


def get(name: str):
    """The objective class registered under `name`; call it with its options: get("rwr")(tau=0.4)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(_REGISTRY)}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def from_config(cfg) -> object:
    """An objective instance from a config section {name, <name>: {options}}; unknown options are errors."""
    cls = get(cfg["name"])
    opts = dict(cfg.get(cfg["name"], {}) or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(opts) - fields
    if unknown:
        raise ValueError(f"objective {cfg['name']!r}: unknown option(s) {sorted(unknown)}; known: {sorted(fields)}")
    return cls(**opts)


def batch_loss(objective, logp: Array, batch: dict) -> tuple[Array, dict[str, Array]]:
    """Loss and metrics of one whole batch (what the trainer computes, accumulation aside)."""
    terms, metrics = objective.row_terms(logp, batch)
    n = jnp.maximum(batch["num_units"], 1.0)
    return terms.sum() / n, {k: v.sum() / n for k, v in metrics.items()}


def add_weights(objective, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host side: the objective's per-row weights and the global unit count."""
    out = dict(batch)
    out["weight"] = objective.weights(batch)
    units = batch["unit_mask"].sum() // (2 if objective.pairwise else 1)
    out["num_units"] = np.float32(units)
    return out

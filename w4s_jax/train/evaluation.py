"""Held-out evaluation while training: how likely the policy finds actions of episodes it never trained on.

Per held-out example the NLL is the mean over its action tokens (always the action only, whatever
`data.loss_on`, so runs with different settings compare on one metric). Reported, under `eval/`:

    nll            mean NLL over held-out examples
    weighted_nll   sum_i w_i * nll_i / n with the objective's weights (for rwr: the RLAO loss on held-out data)
    nll_reward_<r> mean NLL of the held-out actions whose reward is r (one bucket per distinct reward when
                   there are at most 8; otherwise quartiles of the reward, nll_reward_q1 .. q4)

A falling train loss with a rising held-out NLL of rewarded actions is over-fitting.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from w4s_jax.models import target_logprobs
from w4s_jax.models.sharding import ShardingRules
from w4s_jax.train.batches import BatchPlan, assemble, loss_token_cap, row_stats
from w4s_jax.train.data import Example
from w4s_jax.train.step import device_arrays, even_chunk, local_rows

MAX_DISCRETE_BUCKETS = 8


def reward_buckets(rewards: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(bucket names, bucket index per example)."""
    rounded = np.round(np.asarray(rewards, np.float64), 6)
    values = np.unique(rounded)
    if len(values) <= MAX_DISCRETE_BUCKETS:
        return [f"nll_reward_{v:g}" for v in values], np.searchsorted(values, rounded)
    edges = np.quantile(rounded, [0.25, 0.5, 0.75])
    return [f"nll_reward_q{k}" for k in range(1, 5)], np.searchsorted(edges, rounded, side="right")


class HeldOut:
    """Held-out examples in fixed batches; `evaluate(training, trainable, frozen)` -> {"eval/...": value}."""

    def __init__(self, examples: list[Example], objective, *, rows: int, max_len: int, min_bucket: int,
                 min_loss_cap: int, chunk_size: int, rules: ShardingRules):
        if not examples:
            raise ValueError("no held-out examples")
        self.examples = examples
        self.rules, self.rows = rules, rows
        self.chunk_size = chunk_size
        unit_mask = np.ones(len(examples), bool)
        self.weights = np.asarray(objective.weights({
            "reward": np.array([e.reward for e in examples], np.float32),
            "advantage": np.array([e.advantage for e in examples], np.float32),
            "chosen": np.array([e.chosen for e in examples], bool), "unit_mask": unit_mask}), np.float64)
        self.bucket_names, self.bucket_of = reward_buckets(np.array([e.reward for e in examples]))
        self.bucket_sizes = dict(zip(self.bucket_names, np.bincount(self.bucket_of, minlength=len(self.bucket_names))))
        plan = BatchPlan(examples, batch_size=rows, max_len=max_len, seed=0, min_bucket=min_bucket)
        mine = local_rows(rules, rows)  # each host keeps only its rows of every batch
        # (example indices, this host's arrays, loss tokens per row of the whole batch, static loss-token cap);
        # one cap per length bucket
        self.batches = []
        for length, units in sorted(plan.by_bucket.items()):
            chunks = [units[i:i + rows] for i in range(0, len(units), rows)]
            counts = [row_stats(examples, c, rows, 1, plan.units)["loss_tokens"] for c in chunks]
            cap = loss_token_cap(max(int(n.sum()) for n in counts), limit=rows * length, minimum=min_loss_cap)
            for c, n in zip(chunks, counts):
                h = assemble(examples, c, rows, length, 1, plan.units, rows=mine)
                self.batches.append((c, {k: h[k] for k in ("input_ids", "targets", "loss_mask")}, n, cap))
        replicated = NamedSharding(rules.mesh, PartitionSpec())
        self._sums = jax.jit(self._row_sums, static_argnames=("training", "max_tokens"), out_shardings=replicated)

    def _row_sums(self, trainable, frozen, batch, *, training, max_tokens):
        model, forward_kw = training.apply(trainable, frozen)
        logp = target_logprobs(model, batch["input_ids"], batch["targets"], batch["loss_mask"], max_tokens=max_tokens,
                               chunk_size=even_chunk(max_tokens, self.chunk_size), **forward_kw)
        return (logp * batch["loss_mask"]).sum(-1)

    def example_nll(self, training, trainable, frozen) -> np.ndarray:
        """Mean NLL over its action tokens, per held-out example."""
        nll = np.zeros(len(self.examples))
        for units, host, loss_tokens, cap in self.batches:
            batch = device_arrays(host, self.rules, self.rows)
            sums = np.asarray(jax.device_get(self._sums(trainable, frozen, batch, training=training, max_tokens=cap)))
            counts = np.maximum(loss_tokens, 1)
            for r, u in enumerate(units):
                nll[u] = -sums[r] / counts[r]
        return nll

    def evaluate(self, training, trainable, frozen) -> dict[str, float]:
        nll = self.example_nll(training, trainable, frozen)
        out = {"eval/nll": float(nll.mean()), "eval/weighted_nll": float((self.weights * nll).mean())}
        for k, name in enumerate(self.bucket_names):
            out[f"eval/{name}"] = float(nll[self.bucket_of == k].mean())
        return out

    def describe(self) -> dict:
        return {"examples": len(self.examples), "buckets": {k: int(v) for k, v in self.bucket_sizes.items()}}

"""Rewards of a candidate workflow, from its validation accuracy and the history of its state.

- `discrete` (the paper's default, with the public W4S code's semantics): 1 if the accuracy beats the best
  in the history the state shows (examples and earlier turns); else 0.5 if it beats the previous turn
  (before any generated turn: the first example); else 0. With `low_acc_penalty`, 0.1 is subtracted when
  the accuracy is below 0.3.
- `continuous`: the relative gain over the best, (acc - best) / best (best floored at 0.01).
- `cost_aware` (ours): the accuracy gain over the best minus `cost_lambda` x executor dollars per item, so a
  meta-agent can learn to find cheap workflows; dollars come from the executor's accounting.
A failed candidate (no runnable workflow after repairs) scores as accuracy 0 under every rule.
"""
from __future__ import annotations

from dataclasses import dataclass

REWARD_TYPES = ("discrete", "continuous", "cost_aware")


@dataclass(frozen=True)
class RewardConfig:
    type: str = "discrete"
    low_acc_penalty: bool = False
    cost_lambda: float = 0.0   # cost_aware: reward per dollar per item given up

    def __post_init__(self):
        if self.type not in REWARD_TYPES:
            raise ValueError(f"reward.type must be one of {REWARD_TYPES}, got {self.type!r}")
        if self.cost_lambda < 0:
            raise ValueError(f"reward.cost_lambda must be >= 0, got {self.cost_lambda}")


def reward(cfg: RewardConfig, acc: float | None, *, best: float, previous: float,
           cost_per_item: float = 0.0) -> float:
    """`best`: the best accuracy in the state's history; `previous`: the previous turn's (or the first
    example's, before any generated turn)."""
    a = 0.0 if acc is None else float(acc)
    if cfg.type == "discrete":
        r = 1.0 if a > best else 0.5 if a > previous else 0.0
        if cfg.low_acc_penalty and a < 0.3:
            r -= 0.1
        return r
    if cfg.type == "continuous":
        return (a - best) / max(best, 0.01)
    return (a - best) - cfg.cost_lambda * float(cost_per_item)

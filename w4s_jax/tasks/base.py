"""The task interface evaluation and the environment need (DESIGN.md); registered benchmarks implement it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Item:
    id: str
    question: str   # exactly the text the workflow's `solver(agent, task)` receives as `task`
    answer: Any
    meta: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class Task(Protocol):
    name: str
    description: str

    def items(self, split: str) -> list[Item]:
        """Items of the split: "train" (RLAO collection), "valid" (what optimisation sees) or "test"."""

    def score(self, prediction: Any, item: Item) -> float:
        """1.0 for a correct prediction ... 0.0 for a wrong one (partial credit allowed, e.g. F1)."""

    def seed_workflows(self) -> dict[str, str]:
        """name -> source code of a `solver(agent, task)` workflow to start from."""


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


@dataclass
class SplitTask:
    """A task whose splits are materialised lists of items: what every registered task is built as."""
    name: str
    description: str
    splits: dict[str, list[Item]]
    scorer: Callable[[Any, Item], float]
    workflows: dict[str, str] = field(default_factory=dict)
    source: dict = field(default_factory=dict)   # where the items came from (files, hub ids, seeds)

    def items(self, split: str) -> list[Item]:
        return list(self.splits.get(check_split(split), []))

    def score(self, prediction: Any, item: Item) -> float:
        return float(self.scorer(prediction, item))

    def seed_workflows(self) -> dict[str, str]:
        return dict(self.workflows)

"""The minimal task interface evaluation needs (DESIGN.md); registered benchmarks implement it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answer: Any
    meta: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class Task(Protocol):
    name: str
    description: str

    def items(self, split: str) -> list[Item]:
        """Items of the split: "valid" or "test"."""

    def score(self, prediction: Any, item: Item) -> float:
        """1.0 for a correct prediction ... 0.0 for a wrong one (partial credit allowed, e.g. F1)."""

    def seed_workflows(self) -> dict[str, str]:
        """name -> source code of a `solver(agent, task)` workflow to start from."""

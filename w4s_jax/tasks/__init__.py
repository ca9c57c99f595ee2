"""Tasks: the registry of benchmarks and synthetic tasks, scorers, task descriptions, seed workflows."""
from .base import SPLITS, Item, SplitTask, Task
from .registry import get, names, register

__all__ = ["SPLITS", "Item", "SplitTask", "Task", "get", "names", "register"]

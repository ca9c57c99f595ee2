"""Price table for executor models (USD per million tokens) and per-call cost.

Figures are OpenAI's list prices for standard (non-batch) chat completions as published at the time of
writing; check them before trusting a budget. Local / simulated models cost nothing. A user table in JSON
(same shape as `PRICES`) can be merged in with `load_prices(path)`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# model name prefix -> (input, cached input, output) USD per 1M tokens.
PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-3.5-turbo": (0.50, 0.50, 1.50),
    "o4-mini": (1.10, 0.275, 4.40),
    "o3-mini": (1.10, 0.55, 4.40),
    # The simulated strong model of w4s_jax.sim (--simulate) is priced like GPT-4o-mini, so that a workflow's
    # cost is as real to a cost-aware reward as it would be against the API; its scripted replies ("sim")
    # and anything explicitly local cost nothing.
    "sim-strong": (0.15, 0.075, 0.60),
    "sim": (0.0, 0.0, 0.0),
    "local": (0.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(max(cached_tokens, 0), prompt_tokens)
        return ((prompt_tokens - cached) * self.input + cached * self.cached_input
                + completion_tokens * self.output) / 1e6


def lookup(model: str, table: dict[str, tuple[float, float, float]] | None = None) -> Price | None:
    """Longest-prefix match, so dated snapshots ("gpt-4o-mini-2024-07-18") find their family."""
    table = PRICES if table is None else table
    best = None
    for prefix in table:
        if model == prefix or model.startswith(prefix + "-") or model.startswith(prefix + ":"):
            if best is None or len(prefix) > len(best):
                best = prefix
    return None if best is None else Price(*table[best])


def load_prices(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """PRICES updated with a JSON file {"model": [input, cached_input, output], ...}."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"price table {path}: cannot read: {e}") from None
    table = dict(PRICES)
    for name, v in raw.items():
        if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            raise ValueError(f"price table {path}: entry {name!r} must be [input, cached_input, output] numbers")
        table[name] = tuple(float(x) for x in v)
    return table

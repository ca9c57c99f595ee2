"""Sampling options and prompts, validated up front: one clear error per problem, before any compile."""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Sequence

import numpy as np


class SamplingError(ValueError):
    """A sampling option or prompt that cannot be used; the message names it."""


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """temperature 0 = greedy (top_k and top_p are then ignored). top_k 0 = off (as is a top_k of at least
    the vocabulary size); top_p 1.0 = off. `max_new_tokens` bounds the tokens generated per sample, a stop
    token included. `seed` is an integer in [0, 2**32)."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    n: int = 1
    seed: int = 0
    stop_ids: tuple[int, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def validate(self, vocab_size: int) -> "SamplingOptions":
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise SamplingError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < 0:
            raise SamplingError(f"temperature must be a finite number >= 0 (0 = greedy), got {t!r}")
        p = self.top_p
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (0.0 < p <= 1.0):
            raise SamplingError(f"top_p must be in (0, 1] (1 = off), got {p!r}")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise SamplingError(f"top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if not _is_int(self.n) or self.n < 1:
            raise SamplingError(f"n (samples per prompt) must be an integer >= 1, got {self.n!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:  # jax.random.key keeps 32 bits
            raise SamplingError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        for s in self.stop_ids:
            if not _is_int(s) or not 0 <= s < vocab_size:
                raise SamplingError(f"stop id {s!r} is not a token id of the model's vocabulary "
                                    f"(0..{vocab_size - 1})")
        return self


def check_prompts(prompt_ids: Sequence[Sequence[int]], *, vocab_size: int, context: int,
                  max_new_tokens: int) -> list[list[int]]:
    """Plain int lists; each prompt non-empty, in the vocabulary, and leaving room for max_new_tokens."""
    if isinstance(prompt_ids, np.ndarray):
        prompt_ids = prompt_ids.tolist()
    if isinstance(prompt_ids, (str, bytes)) or not isinstance(prompt_ids, Sequence) or not prompt_ids:
        raise SamplingError("prompt_ids must be a non-empty list of prompts, each a list of token ids")
    out = []
    for i, prompt in enumerate(prompt_ids):
        if isinstance(prompt, (str, bytes)) or not hasattr(prompt, "__len__"):
            raise SamplingError(f"prompt {i} must be a list of token ids, got {type(prompt).__name__}")
        ids = [int(t) if _is_int(t) else t for t in prompt]
        if not ids:
            raise SamplingError(f"prompt {i} is empty")
        bad = [t for t in ids if not _is_int(t) or not 0 <= t < vocab_size]
        if bad:
            raise SamplingError(f"prompt {i} holds {bad[0]!r}, not a token id of the model's vocabulary "
                                f"(0..{vocab_size - 1})")
        if len(ids) + max_new_tokens > context:
            raise SamplingError(f"prompt {i} has {len(ids)} tokens; with max_new_tokens={max_new_tokens} that "
                                f"exceeds the model's context of {context} tokens (at most "
                                f"{context - max_new_tokens} prompt tokens)")
        out.append(ids)
    return out

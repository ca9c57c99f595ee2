"""Shape buckets: calls whose sizes fall in the same buckets reuse one compiled program."""
from __future__ import annotations


def length_bucket(n: int, minimum: int = 32) -> int:
    """Smallest of minimum * {1, 1.5, 2, 3, 4, 6, ...} (powers of two and their halfway points) >= n, so
    padding wastes at most a third of the work above the minimum."""
    if n < 1:
        raise ValueError(f"length must be >= 1, got {n}")
    b = minimum
    while True:
        if n <= b:
            return b
        if n <= b + b // 2:
            return b + b // 2
        b *= 2


def pow2_bucket(n: int, minimum: int = 1) -> int:
    """Smallest power of two >= max(n, minimum)."""
    b = 1
    while b < max(n, minimum):
        b *= 2
    return b


def rows_bucket(n: int) -> int:
    """Smallest multiple of a quarter of n's power-of-two octave that is >= n (1..4, 5, 6, 7, 8, 10, 12, 14,
    16, 20, ..., 64, 80, 96, 112, 128, ...): at most a quarter of a batch's rows are padding, and common
    batches (16 prompts x 5 samples = 80) fit exactly."""
    if n < 1:
        raise ValueError(f"row count must be >= 1, got {n}")
    step = max(1, pow2_bucket(n + 1) // 8)
    return -(-n // step) * step

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

"""Examples -> fixed-shape token batches: length buckets, a seeded order, per-host slices.

Rows of one batch share a padded length (the smallest bucket that fits the longest row), so a run compiles
one train step per bucket rather than one per length. A *unit* is one example (or, for pairwise objectives,
a (preferred, rejected) pair occupying two consecutive rows); a batch holds `batch_size` units, the last
one of a bucket padded with masked-out rows so no data is dropped.

The order is a pure function of (seed, epoch): batch k of the run is `plan(k // n) [k % n]`, so the data
position in a checkpoint is a single integer, whatever the number of hosts.

With several hosts, each builds the token arrays of its own rows of every global batch only (`rows=`), and
the per-row numbers of the whole batch (`row_stats`: rewards, masks, token counts; no token arrays), which
the objective's batch-wide weights and the static loss-buffer size need.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from w4s_jax.train.data import Example


def bucket_lengths(max_len: int, min_bucket: int = 64) -> list[int]:
    """Powers of two from min_bucket, then max_len."""
    out, b = [], min_bucket
    while b < max_len:
        out.append(b)
        b *= 2
    return out + [max_len]


def loss_token_cap(n: int, limit: int, minimum: int = 64) -> int:
    """Static size for the loss-token buffer: n rounded up on a geometric grid with 8 steps per octave
    (at most 12.5% of the projected rows are padding, and a run sees few distinct sizes, so few compiles),
    at least `minimum`, at most `limit` (all tokens of the micro-batch)."""
    n = max(int(n), int(minimum), 1)
    step = max(1, 1 << max(0, n.bit_length() - 4))  # 1/8 .. 1/16 of n
    return int(min(-(-n // step) * step, limit))


class BatchPlan:
    """Deterministic, epoch-wise shuffled batches of units (lists of example indices)."""

    def __init__(self, examples: Sequence[Example], *, batch_size: int, max_len: int, seed: int,
                 pairs: Sequence[tuple[int, int]] | None = None, min_bucket: int = 64):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.units = [[i] for i in range(len(examples))] if pairs is None else [list(p) for p in pairs]
        self.rows_per_unit = 1 if pairs is None else 2
        if not self.units:
            raise ValueError("no training units (examples or pairs) to batch")
        self.buckets = bucket_lengths(max_len, min(min_bucket, max_len))
        by_bucket: dict[int, list[int]] = {}
        for u, unit in enumerate(self.units):
            n = max(len(examples[i]) for i in unit)
            b = next(b for b in self.buckets if b >= n)
            by_bucket.setdefault(b, []).append(u)
        self.by_bucket = by_bucket
        self.batches_per_epoch = sum(-(-len(v) // batch_size) for v in by_bucket.values())

    def fingerprint(self) -> str:
        """Identifies the data and its batching, so a resume onto different data is noticed."""
        h = hashlib.sha256()
        for unit in self.units:
            for i in unit:
                e = self.examples[i]
                h.update(e.ids.tobytes())
                h.update(e.loss_mask.tobytes())
                h.update(np.float64(e.reward).tobytes())
        h.update(f"{self.batch_size}/{self.seed}/{self.buckets}".encode())
        return h.hexdigest()[:16]

    def epoch(self, epoch: int) -> list[tuple[int, list[int]]]:
        """(bucket length, unit indices) for every batch of `epoch`, in order."""
        rng = np.random.default_rng([self.seed, epoch])
        batches = []
        for b in sorted(self.by_bucket):
            units = list(self.by_bucket[b])
            rng.shuffle(units)
            batches += [(b, units[i:i + self.batch_size]) for i in range(0, len(units), self.batch_size)]
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def batch(self, position: int) -> tuple[int, list[int]]:
        return self.epoch(position // self.batches_per_epoch)[position % self.batches_per_epoch]

    @property
    def rows(self) -> int:
        """Rows of every global batch."""
        return self.batch_size * self.rows_per_unit

    def arrays(self, position: int, rows: slice | None = None) -> dict[str, np.ndarray]:
        """The global batch at `position` as host arrays ([rows, length] / [rows]); with `rows`, only those
        rows of it (one host's share)."""
        length, units = self.batch(position)
        return assemble(self.examples, units, self.batch_size, length, self.rows_per_unit, self.units, rows=rows)

    def row_stats(self, position: int) -> dict[str, np.ndarray]:
        """Per-row numbers of the whole global batch at `position` (see `row_stats`)."""
        return row_stats(self.examples, self.batch(position)[1], self.batch_size, self.rows_per_unit, self.units)


def row_stats(examples: Sequence[Example], units: list[int], batch_size: int, rows_per_unit: int,
              unit_table: list[list[int]]) -> dict[str, np.ndarray]:
    """[rows] arrays of a batch without its tokens: the scalars the objective reads (reward, advantage,
    ref_logprob, chosen, unit_mask) and each row's token and loss-token counts (padding rows: zeros)."""
    rows = batch_size * rows_per_unit
    out = {"reward": np.zeros((rows,), np.float32), "advantage": np.zeros((rows,), np.float32),
           "ref_logprob": np.zeros((rows,), np.float32), "chosen": np.zeros((rows,), bool),
           "unit_mask": np.zeros((rows,), bool), "tokens": np.zeros((rows,), np.int64),
           "loss_tokens": np.zeros((rows,), np.int64)}
    for u, unit in enumerate(units):
        for j, i in enumerate(unit_table[unit]):
            r, e = u * rows_per_unit + j, examples[i]
            out["reward"][r], out["advantage"][r] = e.reward, e.advantage
            out["ref_logprob"][r], out["chosen"][r] = e.ref_logprob, e.chosen
            out["unit_mask"][r] = True
            out["tokens"][r], out["loss_tokens"][r] = len(e), int(e.loss_mask.sum())
    return out


TOKEN_KEYS = ("input_ids", "targets", "loss_mask", "attention_mask")
SCALAR_KEYS = ("reward", "advantage", "ref_logprob", "chosen", "unit_mask")


def assemble(examples: Sequence[Example], units: list[int], batch_size: int, length: int, rows_per_unit: int,
             unit_table: list[list[int]], rows: slice | None = None) -> dict[str, np.ndarray]:
    """Token arrays [rows, length] and the objective's per-row scalars [rows] of a batch of `units`; with
    `rows` (a slice of the batch's rows), only those rows are built."""
    total = batch_size * rows_per_unit
    start, stop, _ = (rows or slice(None)).indices(total)
    n_rows = max(stop - start, 0)
    out = {
        "input_ids": np.zeros((n_rows, length), np.int32),
        "targets": np.zeros((n_rows, length), np.int32),
        "loss_mask": np.zeros((n_rows, length), bool),
        "attention_mask": np.zeros((n_rows, length), bool),
    }
    first, last = start // rows_per_unit, -(-stop // rows_per_unit)  # the units that own these rows
    for u, unit in enumerate(units[first:last], start=first):
        for j, i in enumerate(unit_table[unit]):
            r, e = u * rows_per_unit + j - start, examples[i]
            if not 0 <= r < n_rows:
                continue
            n = len(e)
            out["input_ids"][r, :n] = e.ids
            out["targets"][r, : n - 1] = e.ids[1:]
            out["loss_mask"][r, :n] = e.loss_mask
            out["attention_mask"][r, :n] = True
    stats = row_stats(examples, units[first:last], last - first, rows_per_unit, unit_table)
    offset = start - first * rows_per_unit
    for k in SCALAR_KEYS:
        out[k] = stats[k][offset:offset + n_rows]
    return out


def host_slice(batch: dict[str, np.ndarray], process_index: int, process_count: int) -> dict[str, np.ndarray]:
    """This host's contiguous share of the rows (each host feeds its own devices)."""
    rows = next(iter(batch.values())).shape[0]
    if rows % process_count:
        raise ValueError(f"{rows} rows do not split over {process_count} hosts")
    n = rows // process_count
    return {k: v[process_index * n:(process_index + 1) * n] for k, v in batch.items()}

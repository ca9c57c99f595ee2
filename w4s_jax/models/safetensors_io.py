"""Safetensors files read as memory maps and written as streams.

The `safetensors` package loads whole tensors (and its numpy backend has no bfloat16), but a 7B checkpoint
must go straight into sharded device arrays: each device shard reads only its slice of the mapped file, so
the host never holds a second copy of the weights. Writing streams one tensor at a time for the same
reason. The format is the published one: u64 header length, JSON header, raw little-endian data.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Callable, Iterable

import ml_dtypes
import numpy as np

DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the file (and tensor) named."""


class SafetensorsFile:
    """Zero-copy view of one .safetensors file: `file[name]` is a read-only numpy memmap view."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            raise CheckpointError(f"{self.path}: checkpoint shard not found") from None
        with open(self.path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{self.path}: truncated (file is {size} bytes, no header)")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or 8 + n > size:
                raise CheckpointError(f"{self.path}: truncated or not a safetensors file "
                                      f"(header of {n} bytes, file of {size} bytes)")
            try:
                header = json.loads(f.read(n))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise CheckpointError(f"{self.path}: corrupt safetensors header ({e})") from None
        self.metadata = header.pop("__metadata__", None) or {}
        self.entries: dict[str, tuple[np.dtype, tuple[int, ...], int, int]] = {}
        data_len = size - 8 - n
        for name, e in header.items():
            try:
                dtype = DTYPES[e["dtype"]]
                shape = tuple(int(s) for s in e["shape"])
                begin, end = (int(o) for o in e["data_offsets"])
            except KeyError as err:
                raise CheckpointError(f"{self.path}: tensor {name!r} has an unsupported or missing "
                                      f"header field ({err})") from None
            if end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise CheckpointError(f"{self.path}: tensor {name!r} has {end - begin} bytes for shape {shape} "
                                      f"of {e['dtype']}")
            if end > data_len:
                raise CheckpointError(f"{self.path}: truncated: tensor {name!r} ends at byte {end} of the data "
                                      f"section, which has only {data_len} bytes")
            self.entries[name] = (dtype, shape, 8 + n + begin, end - begin)
        self._mmap = np.memmap(self.path, dtype=np.uint8, mode="r") if size > 8 + n else None

    def keys(self) -> Iterable[str]:
        return self.entries.keys()

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def __getitem__(self, name: str) -> np.ndarray:
        dtype, shape, start, nbytes = self.entries[name]
        if nbytes == 0:
            return np.zeros(shape, dtype)
        return self._mmap[start:start + nbytes].view(dtype).reshape(shape)


def write_safetensors(path: str | os.PathLike, tensors: list[tuple[str, tuple[int, ...], np.dtype]],
                      fetch: Callable[[str], np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write tensors in the given order; `fetch(name)` is called once per tensor, just before it is written.

    The output is a pure function of the tensors (no timestamps), so saving twice gives identical bytes.
    The file appears under its final name only when complete.
    """
    header: dict = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, shape, dtype in tensors:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        header[name] = {"dtype": _NAMES[np.dtype(dtype)], "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # align the data section to 8 bytes, as the reference writer does
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape, dtype in tensors:
            arr = np.ascontiguousarray(fetch(name), dtype=dtype)
            if arr.shape != tuple(shape):
                raise ValueError(f"{path}: tensor {name!r} has shape {arr.shape}, expected {tuple(shape)}")
            f.write(arr.reshape(-1).view(np.uint8).data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

"""Reading benchmark rows from local files or through `datasets`, and the seeded splits.

Where rows come from, in order: a local file in the layout the public W4S / ADAS / AFlow code ships, in
`data_dir` (or `$W4S_DATA_DIR`); a local copy of the hub dataset in `data_dir/<snapshot>` (the repository
as downloaded, e.g. `huggingface-cli download openai/gsm8k --repo-type dataset --local-dir DIR/gsm8k`, or a
`save_to_disk` directory); the hub itself through `datasets.load_dataset`. With none of them one error says
what to download and where to put it. Bad rows raise `DataError` naming file, line and item id.
"""
from __future__ import annotations

import csv
import glob
import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .base import Item


class DataError(ValueError):
    """A benchmark file or row is malformed (the message names file, line and item id)."""


class DataNotFound(FileNotFoundError):
    """No local copy of a benchmark and the hub cannot provide it (the message says what to download)."""


@dataclass(frozen=True)
class Row:
    where: str      # "path:line" for text files, "path row i" for tables, "repo[split] row i" for the hub
    data: dict


def bad_row(row: Row, item_id: str | None, what: str) -> DataError:
    return DataError(f"{row.where}" + (f" (id {item_id})" if item_id else "") + f": {what}")


def require(row: Row, item_id: str | None, *fields: str) -> list:
    """The row's values for `fields`; a field that is absent or empty is an error naming the row."""
    out = []
    for f in fields:
        value = row.data.get(f)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise bad_row(row, item_id, f"missing {f!r}")
        out.append(value)
    return out


# ------------------------------------------------------------------------------------------ local files

def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_jsonl(path: Path) -> list[Row]:
    rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as e:
                raise DataError(f"{path}:{lineno}: malformed JSON line ({e})") from None
            if not isinstance(data, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(data).__name__}")
            rows.append(Row(f"{path}:{lineno}", data))
    return rows


def read_json_list(path: Path) -> list[Row]:
    try:
        with _open_text(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise DataError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise DataError(f"{path}: expected a JSON list of objects")
    return [Row(f"{path} entry {i}", d) for i, d in enumerate(data)]


def read_tsv(path: Path, columns: tuple[str, ...]) -> list[Row]:
    rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != len(columns):
                raise DataError(f"{path}:{lineno}: expected {len(columns)} tab-separated fields "
                                f"({', '.join(columns)}), found {len(fields)}")
            rows.append(Row(f"{path}:{lineno}", dict(zip(columns, fields))))
    return rows


def read_csv(path: Path) -> list[Row]:
    rows = []
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        reader.fieldnames   # reads the header
        while True:
            start = reader.line_num + 1   # a quoted field may span lines: name the line the record starts on
            try:
                data = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DataError(f"{path}:{start}: malformed CSV record ({e})") from None
            rows.append(Row(f"{path}:{start}", dict(data)))
    return rows


def read_table(path: Path) -> list[Row]:
    """Rows of a parquet, JSON-lines, JSON or CSV file (chosen by extension)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq
        return [Row(f"{path} row {i}", d) for i, d in enumerate(pq.read_table(path).to_pylist())]
    if name.endswith((".jsonl", ".jsonl.gz")):
        return read_jsonl(path)
    if name.endswith((".json", ".json.gz")):
        return read_json_list(path)
    if name.endswith((".csv", ".csv.gz")):
        return read_csv(path)
    raise DataError(f"{path}: unsupported file type (expected parquet, jsonl, json or csv)")


def local_file(data_dir: str | None, *names: str) -> Path | None:
    """The first of `names` that exists under data_dir."""
    if not data_dir:
        return None
    for name in names:
        p = Path(data_dir) / name
        if p.is_file():
            return p
    return None


# ------------------------------------------------------------------------------------------ the hub

@dataclass(frozen=True)
class HubSplit:
    repo: str               # hub id, e.g. "openai/gsm8k"
    config: str | None      # dataset config name, e.g. "main"
    split: str              # e.g. "test"
    snapshot: str           # directory under data_dir holding a local copy of the repository
    files: str              # glob, inside the snapshot, of this split's files, e.g. "main/test-*.parquet"
    gated: bool = False     # the hub asks users to accept terms before downloading

    def describe(self) -> str:
        return f"{self.repo}" + (f" (config {self.config})" if self.config else "") + f", split {self.split!r}"


def _from_saved(path: Path, spec: HubSplit) -> list[Row] | None:
    """Rows of a `save_to_disk` directory (a DatasetDict holding the split, or that split alone)."""
    import datasets

    if (path / "dataset_dict.json").is_file():
        dd = datasets.load_from_disk(str(path))
        if spec.split not in dd:
            raise DataError(f"{path}: the saved DatasetDict has no split {spec.split!r} (has {sorted(dd)})")
        ds = dd[spec.split]
    elif (path / spec.split / "state.json").is_file():
        ds = datasets.load_from_disk(str(path / spec.split))
    elif (path / "state.json").is_file():
        ds = datasets.load_from_disk(str(path))
    else:
        return None
    return [Row(f"{path}[{spec.split}] row {i}", d) for i, d in enumerate(ds)]


class HubUnavailable(Exception):
    """The hub could not provide a split (offline, gated, not cached); the message says why."""


def hub_rows(spec: HubSplit, data_dir: str | None, *, allow_hub: bool = True) -> tuple[list[Row], str]:
    """Rows of a hub split from the local snapshot under data_dir, else (if allowed) from the hub; raises
    HubUnavailable when neither has it.

    Returns (rows, origin) where origin says which copy was read.
    """
    if data_dir:
        snap = Path(data_dir) / spec.snapshot
        if snap.is_dir():
            saved = _from_saved(snap, spec)
            if saved is not None:
                return saved, str(snap)
            files = sorted(glob.glob(str(snap / spec.files)))
            if files:
                return [r for f in files for r in read_table(Path(f))], str(snap / spec.files)
    if not allow_hub:
        raise HubUnavailable(f"{spec.describe()}: no local copy under {data_dir}/{spec.snapshot}")
    import datasets

    try:
        ds = datasets.load_dataset(spec.repo, spec.config, split=spec.split)
    except (ConnectionError, OSError, ValueError) as e:   # offline, gated, not cached, or unknown id
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise HubUnavailable(f"{spec.describe()}: {type(e).__name__}: {first}") from None
    return [Row(f"{spec.repo}[{spec.split}] row {i}", d) for i, d in enumerate(ds)], f"hub:{spec.repo}"


def not_found(task: str, data_dir: str | None, files: Iterable[str], hub: Iterable[HubSplit] = (),
              hub_error: str | None = None) -> DataNotFound:
    """The one error for a benchmark that is nowhere: what to download and where to put it."""
    where = data_dir or "DATA_DIR"
    hub = list(hub)
    lines = [f"{task}: no local copy of the data was found"
             + (f" in {data_dir}" if data_dir else " (no data_dir given and $W4S_DATA_DIR is unset)")
             + (" and the hub could not provide it" if hub else "") + "."]
    if hub_error:
        lines.append(f"  The hub said: {hub_error}")
    for f in files:
        lines.append(f"  Put the file {f} at {where}/{f}")
    for h in hub:
        gated = (" The dataset is gated: accept its terms on its hub page and log in (huggingface-cli login) "
                 "first, or use the local file above.") if h.gated else ""
        lines.append(f"  or download {h.describe()}: huggingface-cli download {h.repo} --repo-type dataset "
                     f"--local-dir {where}/{h.snapshot}  (so that {where}/{h.snapshot}/{h.files} exists).{gated}")
    lines.append("  Then pass data_dir=<that directory> (launch scripts: --config.data_dir) or set W4S_DATA_DIR.")
    return DataNotFound("\n".join(lines))


def rows_from_hub(task: str, data_dir: str | None, specs: list[HubSplit], files: Iterable[str] = ()
                  ) -> tuple[list[Row], str]:
    """Rows of several hub splits, concatenated in the given order; DataNotFound naming all options if any is missing."""
    rows, origins = [], []
    for spec in specs:
        try:
            r, origin = hub_rows(spec, data_dir)
        except HubUnavailable as e:
            raise not_found(task, data_dir, files, specs, hub_error=str(e)) from None
        rows += r
        origins.append(origin)
    return rows, ", ".join(dict.fromkeys(origins))


# ------------------------------------------------------------------------------------------ splits

def check_unique_ids(items: list[Item], origin: str) -> None:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise DataError(f"{origin}: duplicate item id {it.id!r}")
        seen.add(it.id)


def seeded_split(items: list[Item], *, seed: int, valid: int, test: int, origin: str,
                 exact: bool = False) -> dict[str, list[Item]]:
    """Shuffle with `random.Random(seed)` (as `random.seed(seed); random.shuffle(xs)` does), then valid is the
    first `valid` items, test the next `test`, train the rest. Fewer items than valid + test (a truncated
    download) is an error; with `exact`, so is any other count."""
    check_unique_ids(items, origin)
    need = valid + test
    if len(items) < need or (exact and len(items) != need):
        raise DataError(f"{origin}: expected {'exactly' if exact else 'at least'} {need} items "
                        f"({valid} valid + {test} test), found {len(items)}; is the file complete?")
    order = list(items)
    random.Random(seed).shuffle(order)
    return {"valid": order[:valid], "test": order[valid:need], "train": order[need:]}


def build_items(rows: list[Row], make: Callable[[int, Row], Item | None]) -> list[Item]:
    """Items from rows in order; `make(index, row)` raises `bad_row(...)` on bad data, returns None to skip."""
    out = []
    for i, row in enumerate(rows):
        item = make(i, row)
        if item is not None:
            out.append(item)
    return out

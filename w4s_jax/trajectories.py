"""Trajectory JSONL: the rollout -> trainer contract of DESIGN.md, its writer and its reader (no JAX here).

One line per evaluated candidate action. The reader validates strictly: a line that does not parse or
lacks a required field is an error naming file and line; the only exception is a truncated *last* line
(the writer crashed mid-line), which is reported and skipped. The writer appends whole lines, one turn at
a time, flushed and fsync'ed, so a crash loses at most the turn in flight; opening an existing file cuts a
torn last line and remembers which (episode_id, turn, candidate) keys are already written, so a restarted
run neither duplicates nor loses a candidate.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import logging
import math
import os

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_NUMBER = (int, float)
# field -> accepted types (bool is an int subclass in Python, so numbers exclude it explicitly below)
REQUIRED_FIELDS = {
    "schema": int, "run_id": str, "episode_id": str, "task": str, "turn": int, "candidate": int,
    "messages": list, "action": str, "reward": _NUMBER, "chosen": bool, "status": str,
}
STATUSES = ("ok", "failed")
USAGE_FIELDS = ("executor_prompt_tokens", "executor_completion_tokens", "cost_usd")


class TrajectoryError(ValueError):
    """A trajectory file that cannot be used, with file and line named."""


@dataclasses.dataclass(frozen=True)
class Record:
    file: str
    line: int
    run_id: str
    episode_id: str
    task: str
    turn: int
    candidate: int
    messages: tuple  # of {"role", "content"} dicts: the state s_t
    action: str
    reward: float
    chosen: bool
    status: str
    valid_acc: float | None = None
    action_logprob: float | None = None
    repairs: int = 0
    usage: dict = dataclasses.field(default_factory=dict, compare=False)
    meta: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple:
        return (self.run_id, self.episode_id, self.turn, self.candidate)

    @property
    def state_key(self) -> tuple:
        """Candidates of the same state share this key."""
        return (self.run_id, self.episode_id, self.turn)


def resolve_paths(path: str | os.PathLike | list) -> list[str]:
    """A file, a glob, or a list of those -> sorted existing files (error if none)."""
    specs = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    files: list[str] = []
    for spec in specs:
        spec = os.fspath(spec)
        matches = sorted(glob.glob(spec)) if any(c in spec for c in "*?[") else [spec]
        for m in matches:
            if not os.path.isfile(m):
                raise TrajectoryError(f"trajectory file {m!r} does not exist")
        files.extend(matches)
    if not files:
        raise TrajectoryError(f"no trajectory files match {path!r}")
    return files


def _is_type(value, types) -> bool:
    if isinstance(value, bool) and types is not bool:
        return False
    return isinstance(value, types)


def _finite_or_none(obj: dict, name: str, where: str) -> float | None:
    v = obj.get(name)
    if v is not None and not (_is_type(v, _NUMBER) and math.isfinite(float(v))):
        raise TrajectoryError(f"{where}: {name} must be a finite number or null, got {v!r}")
    return None if v is None else float(v)


def parse_record(obj, where: str) -> Record:
    """Validate one decoded line; `where` is "file:line" (used in every error and kept in the record)."""
    if not isinstance(obj, dict):
        raise TrajectoryError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for name, types in REQUIRED_FIELDS.items():
        if name not in obj:
            raise TrajectoryError(f"{where}: required field {name!r} is missing")
        if obj[name] is None and name == "reward":
            raise TrajectoryError(f"{where}: reward is null")
        if not _is_type(obj[name], types):
            raise TrajectoryError(f"{where}: field {name!r} has type {type(obj[name]).__name__}")
    if obj["schema"] != SCHEMA_VERSION:
        raise TrajectoryError(f"{where}: schema {obj['schema']} is not supported (expected {SCHEMA_VERSION})")
    reward = float(obj["reward"])
    if not math.isfinite(reward):
        raise TrajectoryError(f"{where}: reward is {obj['reward']!r}, not a finite number")
    if obj["status"] not in STATUSES:
        raise TrajectoryError(f"{where}: status {obj['status']!r} is not one of {STATUSES}")
    messages = obj["messages"]
    for i, m in enumerate(messages):
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise TrajectoryError(f"{where}: messages[{i}] must be {{'role': system|user|assistant, "
                                  f"'content': str}}")
    if not messages:
        raise TrajectoryError(f"{where}: messages (the state) is empty")
    repairs = obj.get("repairs", 0)
    if not (_is_type(repairs, int) and repairs >= 0):
        raise TrajectoryError(f"{where}: repairs must be a non-negative integer, got {repairs!r}")
    usage = obj.get("usage") or {}
    meta = obj.get("meta") or {}
    if not isinstance(usage, dict) or not isinstance(meta, dict):
        raise TrajectoryError(f"{where}: usage and meta must be objects")
    file, _, line = where.rpartition(":")
    return Record(file=file, line=int(line), run_id=obj["run_id"], episode_id=obj["episode_id"],
                  task=obj["task"], turn=obj["turn"], candidate=obj["candidate"],
                  messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
                  action=obj["action"], reward=reward, chosen=obj["chosen"], status=obj["status"],
                  valid_acc=_finite_or_none(obj, "valid_acc", where),
                  action_logprob=_finite_or_none(obj, "action_logprob", where),
                  repairs=repairs, usage=usage, meta=meta)


def _split_lines(raw: bytes) -> tuple[list[bytes], bool]:
    lines = raw.split(b"\n")
    complete_end = raw.endswith(b"\n")
    if complete_end or raw == b"":
        lines = lines[:-1]
    return lines, complete_end


def read_file(path: str, report: dict | None = None) -> list[Record]:
    with open(path, "rb") as f:
        raw = f.read()
    lines, complete_end = _split_lines(raw)
    out = []
    for i, line in enumerate(lines, start=1):
        where = f"{path}:{i}"
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if i == len(lines) and not complete_end:
                log.warning("%s: skipping a truncated last line (%d bytes; the writer stopped mid-line)",
                            where, len(line))
                if report is not None:
                    report["truncated_lines"] = report.get("truncated_lines", 0) + 1
                continue
            raise TrajectoryError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        out.append(parse_record(obj, where))
    return out


def read_trajectories(path, report: dict | None = None) -> list[Record]:
    """All records of the files `path` names, in file then line order; duplicates of a
    (run_id, episode_id, turn, candidate) key keep the first occurrence."""
    records, seen = [], set()
    for file in resolve_paths(path):
        for r in read_file(file, report):
            if r.key in seen:
                if report is not None:
                    report["duplicates"] = report.get("duplicates", 0) + 1
                continue
            seen.add(r.key)
            records.append(r)
    return records


def make_record(*, run_id: str, episode_id: str, task: str, turn: int, candidate: int, messages: list[dict],
                action: str, reward: float, valid_acc: float | None, chosen: bool, status: str,
                usage: dict, repairs: int = 0, action_logprob: float | None = None,
                meta: dict | None = None) -> dict:
    """A record as the contract spells it (field order kept for readers of the raw file)."""
    return {"schema": SCHEMA_VERSION, "run_id": run_id, "episode_id": episode_id, "task": task, "turn": turn,
            "candidate": candidate, "messages": list(messages), "action": action, "reward": float(reward),
            "valid_acc": valid_acc, "chosen": chosen, "status": status,
            "usage": {k: usage.get(k, 0) for k in USAGE_FIELDS}, "action_logprob": action_logprob,
            "repairs": int(repairs), "meta": dict(meta or {})}


class TrajectoryWriter:
    """Appends records a turn at a time; resumable.

    On open, an existing file is read back: a torn last line (a crash mid-write) is cut off, and the
    records already there are kept in `existing` so that a restarted run can rebuild its episodes and
    skip what is done. Every other defect in the file is an error (nothing is overwritten).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.cut_bytes = 0
        self.existing: list[Record] = []
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if os.path.exists(self.path):
            self._recover()
        self._keys = {(r.episode_id, r.turn, r.candidate) for r in self.existing}
        self._f = open(self.path, "ab")

    def _recover(self) -> None:
        with open(self.path, "rb") as f:
            raw = f.read()
        lines, complete_end = _split_lines(raw)
        if lines and not complete_end:
            try:
                json.loads(lines[-1])
                torn = False
            except (json.JSONDecodeError, UnicodeDecodeError):
                torn = True
            if torn:
                keep = len(raw) - len(lines[-1])
                log.warning("%s: cutting a torn last line (%d bytes) left by an interrupted run",
                            self.path, len(lines[-1]))
                with open(self.path, "r+b") as f:
                    f.truncate(keep)
                    f.flush()
                    os.fsync(f.fileno())
                self.cut_bytes = len(raw) - keep
            else:  # a whole record without its newline: complete it
                with open(self.path, "ab") as f:
                    f.write(b"\n")
                    f.flush()
                    os.fsync(f.fileno())
        self.existing = read_file(self.path)

    def has(self, episode_id: str, turn: int, candidate: int) -> bool:
        return (episode_id, turn, candidate) in self._keys

    def write_turn(self, records: list[dict]) -> int:
        """Validate and append the records of one turn in one write, then fsync; returns how many were new."""
        lines = []
        for rec in records:
            key = (rec.get("episode_id"), rec.get("turn"), rec.get("candidate"))
            if key in self._keys:
                continue
            line = json.dumps(rec, ensure_ascii=False, allow_nan=False)
            parse_record(json.loads(line), f"{self.path}:<new record {key}>:0")
            lines.append(line.encode() + b"\n")
            self._keys.add(key)
        if lines:
            self._f.write(b"".join(lines))
            self._f.flush()
            os.fsync(self._f.fileno())
        return len(lines)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

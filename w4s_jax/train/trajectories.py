"""Reading trajectory JSONL (the rollout -> trainer contract in DESIGN.md) with strict validation.

Every line is one evaluated candidate. A line that does not parse or lacks a required field is an error
naming file and line; the only exception is a truncated *last* line (the writer crashed mid-line), which
is reported and skipped.
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
    messages: tuple  # of {"role", "content"} dicts
    action: str
    reward: float
    chosen: bool
    status: str
    valid_acc: float | None = None
    action_logprob: float | None = None

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


def parse_record(obj, where: str) -> Record:
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
    optional = {}
    for name in ("valid_acc", "action_logprob"):
        v = obj.get(name)
        if v is not None and not (_is_type(v, _NUMBER) and math.isfinite(float(v))):
            raise TrajectoryError(f"{where}: {name} must be a finite number or null, got {v!r}")
        optional[name] = None if v is None else float(v)
    file, _, line = where.rpartition(":")
    return Record(file=file, line=int(line), run_id=obj["run_id"], episode_id=obj["episode_id"],
                  task=obj["task"], turn=obj["turn"], candidate=obj["candidate"],
                  messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
                  action=obj["action"], reward=reward, chosen=obj["chosen"], status=obj["status"], **optional)


def read_file(path: str, report: dict | None = None) -> list[Record]:
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    complete_end = raw.endswith(b"\n")
    if complete_end:
        lines = lines[:-1]
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

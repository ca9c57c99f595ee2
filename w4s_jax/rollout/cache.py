"""SQLite response cache: request hash + sample index -> JSON response.

WAL mode so readers (another run replaying the same file) never block the writer. Writes are batched
(commit every few dozen puts or half a second) because a commit per call would cost more than the call
on a busy client; a crash loses at most that batch, which only means those calls are made again.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path


def canonical_json(request: dict) -> bytes:
    """The request as canonical JSON (sorted keys, no whitespace): hashed for the cache, and sent as is."""
    return json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def request_hash(request: dict | bytes) -> str:
    """Stable hash of the full request (of its canonical JSON)."""
    blob = request if isinstance(request, bytes) else canonical_json(request)
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path, *, batch: int = 32, max_delay_s: float = 0.5):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses ("
                             "req TEXT NOT NULL, sample INTEGER NOT NULL, value TEXT NOT NULL, "
                             "created REAL NOT NULL, PRIMARY KEY (req, sample))")
        except sqlite3.DatabaseError as e:
            raise ValueError(f"response cache {self.path}: not a usable SQLite database: {e}") from None
        self._pending: dict[tuple[str, int], str] = {}
        self._batch = batch
        self._max_delay = max_delay_s
        self._last_commit = time.monotonic()

    def get(self, req: str, sample: int) -> dict | None:
        raw = self._pending.get((req, sample))
        if raw is None:
            row = self._db.execute("SELECT value FROM responses WHERE req=? AND sample=?",
                                   (req, sample)).fetchone()
            if row is None:
                return None
            raw = row[0]
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return None  # a damaged entry is a miss, not a crash: the call is simply made again

    def put(self, req: str, sample: int, value: dict) -> None:
        self._pending[(req, sample)] = json.dumps(value, ensure_ascii=False)
        if len(self._pending) >= self._batch or time.monotonic() - self._last_commit > self._max_delay:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows = [(r, s, v, time.time()) for (r, s), v in self._pending.items()]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        self._pending.clear()
        self._last_commit = time.monotonic()

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

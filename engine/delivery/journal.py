"""The delivery journal (SQLite, stdlib) and the dead-letter file.

The journal records one row per input event that reached a final outcome. A
re-run of the same command skips every event already recorded, so after a crash
nothing acknowledged is sent again, and everything else is sent at least once.
The dead-letter file is NDJSON: one failed event per line with its error, status,
attempts and hint, ready for ``relay replay``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["DeadLetter", "Journal", "NullJournal", "event_key"]

#: Journal commits are grouped: at most this many outcomes, or this many seconds, per commit.
COMMIT_EVERY = 64
COMMIT_SECONDS = 0.25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    key TEXT PRIMARY KEY,
    preset TEXT NOT NULL,
    line INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    http_status TEXT,
    attempts INTEGER,
    at REAL NOT NULL
)
"""


def event_key(preset: str, line: int, raw: bytes) -> str:
    """Identity of one input line: preset, position and content."""
    digest = hashlib.blake2b(raw.strip(), digest_size=10, person=preset.encode()[:16]).hexdigest()
    return f"{line}:{digest}"


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self.had_entries = self._db.execute("SELECT 1 FROM outcomes LIMIT 1").fetchone() is not None
        self._pending = 0
        self._opened = 0.0

    def done(self, key: str) -> bool:
        if not self.had_entries:
            return False
        with self._lock:
            return self._db.execute("SELECT 1 FROM outcomes WHERE key = ?", (key,)).fetchone() is not None

    def record(
        self, key: str, preset: str, line: int | None, status: str, reason: str | None, http_status: Any, attempts: int
    ) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
                self._opened = now
            self._db.execute(
                "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    preset,
                    line,
                    status,
                    reason,
                    None if http_status is None else str(http_status),
                    attempts,
                    time.time(),
                ),
            )
            self._pending += 1
            # Group commits: one per COMMIT_EVERY outcomes or COMMIT_SECONDS, whichever comes
            # first. An outcome is acknowledged once committed; a crash before that re-sends
            # it on the next run (at least once), never loses it.
            if self._pending >= COMMIT_EVERY or now - self._opened >= COMMIT_SECONDS:
                self._commit()

    def _commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._pending = 0

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM outcomes GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def close(self) -> None:
        with self._lock:
            self._commit()
            self._db.close()


class NullJournal(Journal):
    """Records nothing: for dry runs (which acknowledge nothing) and replays of a dead letter.

    Keeps memory flat however long the stream is.
    """

    def __init__(self) -> None:  # no database at all
        self.had_entries = False

    def done(self, key: str) -> bool:
        return False

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass

    def counts(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


class DeadLetter:
    """Appends failed events as NDJSON, flushed per line so a crash loses none."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._handle: TextIO | None = None
        self._lock = threading.Lock()
        self.count = 0

    def write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run
            self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._handle.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

"""The delivery journal (SQLite, stdlib): one recorded outcome per input line.

The journal records one row per input line that reached a final outcome, blank
lines included, so its rows reconcile with the lines read. A re-run of the same
command skips every line already recorded: after a crash nothing acknowledged is
sent again, and everything else is sent at least once.

The dead-letter file is NDJSON: one failed or parked event per line, with its
exact input (``raw``, or ``raw_base64`` when it is not UTF-8), its original line
number, the error, status, attempts and the preset's hint, ready for ``relay
replay``. A failure is written there first, flushed and fsynced, and only then
journaled, so no event is ever marked done without being kept.

Events whose contact (``order_key``) has an unresolved failure are *parked*:
dead-lettered behind the failed one, so that a replay delivers that contact's
events in their original order. The journal remembers which contacts are blocked
across runs, until a replay resolves them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .deadletter import prepare_folder, why
from .deliver import StepFailure

__all__ = ["UNRESOLVED", "Journal", "NullJournal", "OpenJob", "event_key"]

#: Journal commits are grouped: at most this many outcomes, or this many seconds, per commit.
COMMIT_EVERY = 64
COMMIT_SECONDS = 0.25
#: Outcomes that leave an event in the dead letter, waiting for `relay replay`.
UNRESOLVED = ("failed", "parked")

_SCHEMA_VERSION = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    key TEXT PRIMARY KEY,
    preset TEXT NOT NULL,
    line INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    http_status TEXT,
    attempts INTEGER,
    at REAL NOT NULL,
    order_key TEXT
);
CREATE INDEX IF NOT EXISTS outcomes_unresolved ON outcomes (status) WHERE status IN ('failed', 'parked');
CREATE TABLE IF NOT EXISTS runs (started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (key TEXT NOT NULL, step TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (key, step));
CREATE TABLE IF NOT EXISTS batch_jobs (
    ref TEXT PRIMARY KEY, step TEXT NOT NULL, grp TEXT, job TEXT NOT NULL, keys TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS step_failures (
    key TEXT NOT NULL, step TEXT NOT NULL, message TEXT, hint TEXT, status TEXT, PRIMARY KEY (key, step)
);
"""


@dataclass(frozen=True)
class OpenJob:
    """A batch's asynchronous job that was submitted and has not reported yet: after a crash
    the next run polls it (never sends its batch again) and settles its events' step."""

    ref: str
    step: str
    group: Any
    job: Any
    #: The batch's items in order, each ``[event key, ..., item key]``: the journal keys of the
    #: events it carries (several when coalesced), then the vendor's key of the item (or null).
    keys: tuple[Any, ...]


def event_key(preset: str, line: int, raw: bytes) -> str:
    """Identity of one input line: preset, position and content."""
    digest = hashlib.blake2b(raw.strip(), digest_size=10, person=preset.encode()[:16]).hexdigest()
    return f"{line}:{digest}"


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            prepare_folder(self.path, "the journal")
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
            # Prove it is writable now, before the first request is sent, not at the first
            # outcome: a real write (an empty transaction succeeds even on a read-only file).
            self._db.execute("INSERT INTO runs VALUES (?)", (time.time(),))
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot use the journal {self.path}: {why(exc)}") from None
        self._lock = threading.Lock()  # the database's; taken before _memo, never while holding it
        self._memo = threading.Lock()  # what waits in memory: a worker never waits for the disk for it
        self.had_entries = self._db.execute("SELECT 1 FROM outcomes LIMIT 1").fetchone() is not None
        # With no step progress on disk, `done` asks only _in_flight (steps of events not yet recorded).
        self._had_steps = any(
            self._db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("steps", "step_failures")
        )
        # The open group's outcome rows and step marks: one executemany each (_write) when it commits.
        self._rows: list[tuple[Any, ...]] = []
        self._marks: list[tuple[str, str, float]] = []
        self._in_flight: dict[str, set[str]] = {}
        self._opened = 0.0
        self._closed = False

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version < _SCHEMA_VERSION:
            exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'outcomes'").fetchone()
            if exists:
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(outcomes)")}
                if "order_key" not in columns:
                    self._db.execute("ALTER TABLE outcomes ADD COLUMN order_key TEXT")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def status(self, key: str) -> str | None:
        """The outcome an earlier run recorded for this line, or None."""
        if not self.had_entries:
            return None
        with self._lock:
            self._write()
            row = self._db.execute("SELECT status FROM outcomes WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def record(
        self,
        key: str,
        preset: str,
        line: int | None,
        status: str,
        reason: str | None,
        http_status: Any,
        attempts: int,
        order_key: str | None = None,
    ) -> None:
        now = time.monotonic()
        row = (key, preset, line, status, reason, None if http_status is None else str(http_status), attempts)
        with self._memo:
            if self._closed:  # an abandoned worker finishing after an interrupt: not acknowledged
                return
            if not self._rows and not self._marks:
                self._opened = now
            self._rows.append((*row, time.time(), order_key))
            self._in_flight.pop(key, None)
            due = len(self._rows) >= COMMIT_EVERY or now - self._opened >= COMMIT_SECONDS
        # Group commits: one per COMMIT_EVERY outcomes or COMMIT_SECONDS, whichever comes first,
        # by whichever worker finds one due while no commit is under way (the rows wait for the
        # next one otherwise). An outcome is acknowledged once committed; a crash before that
        # re-sends it on the next run (at least once), never loses it.
        if due and self._lock.acquire(blocking=False):
            try:
                if not self._closed:
                    self._commit()
            finally:
                self._lock.release()

    def steps(self, key: str) -> _Steps:
        """The progress of one event's steps: a write or track that succeeded is never sent again."""
        return _Steps(self, key)

    def _step_done(self, key: str, step: str) -> bool:
        with self._memo:
            if step in self._in_flight.get(key, ()):
                return True
            if not self._had_steps:  # nothing on disk: an event's steps are all in memory
                return False
        with self._lock:
            self._write()
            row = self._db.execute("SELECT 1 FROM steps WHERE key = ? AND step = ?", (key, step)).fetchone()
        return row is not None

    def _mark_step(self, key: str, step: str) -> None:
        with self._memo:
            if self._closed:
                return
            if not self._rows and not self._marks:
                self._opened = time.monotonic()
            # Committed with the event's outcome (same group): a crash before re-sends it, at least once.
            self._marks.append((key, step, time.time()))
            self._in_flight.setdefault(key, set()).add(step)

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
            self._opened = time.monotonic()

    def _write(self) -> None:
        with self._memo:
            rows, marks, self._rows, self._marks = self._rows, self._marks, [], []
        if rows or marks:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")  # the group's clock (_opened) runs from its first row
            if rows:
                self._db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if marks:
                self._db.executemany("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)", marks)

    def open_job(self, ref: str, step: str, group: Any, job: Any, keys: list[Any]) -> None:
        """Remember a submitted job, durably now: a crash from here on resumes by polling it."""
        with self._lock:
            if self._closed:
                return
            self._begin()
            self._db.execute(
                "INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?)",
                (ref, step, json.dumps(group), json.dumps(job), json.dumps(keys), time.time()),
            )
            self._commit()

    def open_jobs(self) -> list[OpenJob]:
        """Jobs a crashed run submitted that have not reported, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT ref, step, grp, job, keys FROM batch_jobs ORDER BY at").fetchall()
        return [
            OpenJob(ref, step, json.loads(grp), json.loads(job), tuple(json.loads(keys)))
            for ref, step, grp, job, keys in rows
        ]

    def finish_job(
        self, ref: str, step: str, failures: dict[str, tuple[str, str | None, Any]], keys: list[str]
    ) -> None:
        """A job reported: ``step`` is done for each of ``keys`` but those in ``failures``
        (key -> message, hint, status), which fail with the vendor's words when read."""
        with self._lock:
            if self._closed:
                return
            self._had_steps = True
            self._begin()
            now = time.time()
            for key in keys:
                if key in failures:
                    message, hint, status = failures[key]
                    self._db.execute(
                        "INSERT OR REPLACE INTO step_failures VALUES (?, ?, ?, ?, ?)",
                        (key, step, message, hint, None if status is None else str(status)),
                    )
                else:
                    self._db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)", (key, step, now))
            self._db.execute("DELETE FROM batch_jobs WHERE ref = ?", (ref,))

    def drop_job(self, ref: str) -> None:
        """A job that reported while this run waited: forgotten with the progress recorded next."""
        with self._lock:
            if not self._closed:
                self._begin()
                self._db.execute("DELETE FROM batch_jobs WHERE ref = ?", (ref,))

    def _step_failure(self, key: str, step: str) -> tuple[str, str | None, str | None] | None:
        with self._lock:
            if not self._had_steps:  # step failures are only written by finish_job
                return None
            row = self._db.execute(
                "SELECT message, hint, status FROM step_failures WHERE key = ? AND step = ?", (key, step)
            ).fetchone()
            if row is not None and not self._closed:
                self._begin()
                self._db.execute("DELETE FROM step_failures WHERE key = ? AND step = ?", (key, step))
        return None if row is None else (str(row[0]), row[1], row[2])

    def _commit(self) -> None:
        self._write()
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._write()
            rows = self._db.execute("SELECT status, COUNT(*) FROM outcomes GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def blocked_keys(self) -> dict[str, int]:
        """Contacts with an unresolved failure: order key -> line of their first failed event."""
        with self._lock:
            self._write()
            rows = self._db.execute(
                "SELECT order_key, MIN(line) FROM outcomes WHERE status IN ('failed', 'parked') "
                "AND order_key IS NOT NULL GROUP BY order_key"
            ).fetchall()
        return {key: line for key, line in rows}

    def unresolved(self, keys: Iterable[str] | None = None) -> int:
        """How many events (of ``keys``, or all) sit in the dead letter."""
        with self._lock:
            self._write()
            if keys is None:
                row = self._db.execute("SELECT COUNT(*) FROM outcomes WHERE status IN ('failed', 'parked')")
                return int(row.fetchone()[0])
            total = 0
            for key in keys:
                row = self._db.execute(
                    "SELECT 1 FROM outcomes WHERE key = ? AND status IN ('failed', 'parked')", (key,)
                ).fetchone()
                total += row is not None
            return total

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._commit()

    def close(self) -> None:
        with self._lock:
            with self._memo:
                if self._closed:
                    return
                self._closed = True
            self._commit()
            self._db.close()


@dataclass(frozen=True)
class _Steps:
    journal: Journal
    key: str

    def done(self, step: str) -> bool:
        return self.journal._step_done(self.key, step)

    def mark(self, step: str) -> None:
        self.journal._mark_step(self.key, step)

    def failure(self, step: str) -> StepFailure | None:
        found = self.journal._step_failure(self.key, step)
        if found is None:
            return None
        message, hint, status = found
        return StepFailure(message, hint, int(status) if status and status.isdigit() else status)


class NullJournal(Journal):
    """Records nothing: for dry runs, which acknowledge nothing. Keeps memory flat."""

    def __init__(self) -> None:  # no database at all
        self.had_entries = False

    def steps(self, key: str) -> _Steps:
        return _Steps(self, key)

    def _step_done(self, key: str, step: str) -> bool:
        return False

    def _mark_step(self, key: str, step: str) -> None:
        pass

    def _step_failure(self, key: str, step: str) -> tuple[str, str | None, str | None] | None:
        return None

    def open_job(self, ref: str, step: str, group: Any, job: Any, keys: list[Any]) -> None:
        pass

    def open_jobs(self) -> list[OpenJob]:
        return []

    def finish_job(
        self, ref: str, step: str, failures: dict[str, tuple[str, str | None, Any]], keys: list[str]
    ) -> None:
        pass

    def status(self, key: str) -> str | None:
        return None

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass

    def counts(self) -> dict[str, int]:
        return {}

    def blocked_keys(self) -> dict[str, int]:
        return {}

    def unresolved(self, keys: Iterable[str] | None = None) -> int:
        return 0

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

"""The embedded queue: accepted events in SQLite (WAL), committed in groups and fsynced.

One writer thread owns every write. Requests hand it their events and wait; it
takes everything pending, writes it in one transaction, commits with
``synchronous=FULL`` (the commit is fsynced) and only then answers them all: a
*grouped commit*, so 32 concurrent clients cost one fsync, not 32.

Each destination reads the queue at its own pace through its own cursor (the
highest sequence number up to which every event's outcome is recorded), so one
slow destination never holds up another. Events every destination has passed
are removed (after ``retention`` seconds). De-duplication remembers each
source's messageIds for ``dedup_window`` seconds.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import InputError
from .watermark import Watermark

__all__ = ["Appended", "EmbeddedQueue", "Message", "QueueFeed", "Record", "claim_ids", "open_db"]

#: Rows written by one statement: one step of SQLite (the GIL released once, not once a row);
#: at 3 parameters a row, well under SQLite's 32,766 parameters.
_ROWS = 2_000
#: How often the writer prunes remembered messageIds and delivered events.
PRUNE_EVERY = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received REAL NOT NULL, source TEXT NOT NULL, raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, message_id TEXT NOT NULL, received REAL NOT NULL, PRIMARY KEY (source, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_received ON seen (received);
CREATE TABLE IF NOT EXISTS cursors (destination TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class Message(NamedTuple):
    """One accepted event on its way into the queue: its id (for de-duplication) and its bytes."""

    message_id: str
    raw: bytes
    parsed: Any = None

    @property
    def event(self) -> Any:
        """The event itself, for a queue that keys messages by contact: as parsed by the collector,
        else from its bytes (as delivery parses them)."""
        return self.parsed if self.parsed is not None else json.loads(self.raw)


@dataclass(frozen=True)
class Record:
    """One queued event, as a destination reads it."""

    seq: int
    raw: bytes
    received: float


@dataclass(frozen=True)
class Appended:
    accepted: int
    duplicates: int


@dataclass
class _Pending:
    source: str
    messages: list[Message]
    received: float
    done: Future[Appended] = field(default_factory=Future)


def claim_ids(db: sqlite3.Connection, source: str, ids: list[str], now: float, window: float) -> list[bool]:
    """For each id, True when it is new: remembered from now on (within the caller's transaction).

    An id repeated within ``ids`` is new once, at its first place. ``INSERT OR IGNORE ...
    RETURNING`` names the rows it inserted: the ids already remembered are the ones it leaves out.
    """
    if window <= 0:
        return [True] * len(ids)
    inserted: set[str] = set()
    for start in range(0, len(ids), _ROWS):
        chunk = ids[start : start + _ROWS]
        params = [value for message_id in chunk for value in (source, message_id, now)]
        rows = db.execute(f"INSERT OR IGNORE INTO seen VALUES {_rows(len(chunk), 3)} RETURNING message_id", params)
        inserted.update(row[0] for row in rows)
    fresh = []
    for message_id in ids:
        fresh.append(message_id in inserted)
        inserted.discard(message_id)
    return fresh


def _remember_all(db: sqlite3.Connection, claims: list[Any]) -> bool:
    """Remember ``claims`` (source, id, received: distinct pairs); True when none was remembered before.

    The common case, settled in one multi-row statement per ``_ROWS`` ids (one SQLite step, one
    hand-off of the GIL). When it returns False, some rows were not inserted: the caller rolls back.
    """
    inserted = 0
    for start in range(0, len(claims), 3 * _ROWS):
        chunk = claims[start : start + 3 * _ROWS]
        before = db.total_changes
        db.execute(f"INSERT OR IGNORE INTO seen VALUES {_rows(len(chunk) // 3, 3)}", chunk)
        inserted += db.total_changes - before
    return inserted * 3 == len(claims)


@functools.lru_cache(maxsize=256)
def _rows(count: int, width: int) -> str:
    """``(?,?),(?,?)``: ``count`` rows of ``width`` parameters, for one multi-row statement."""
    return ",".join(["(" + ",".join("?" * width) + ")"] * count)


def open_db(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"cannot use the queue {path}: {exc}") from None
    return db


class EmbeddedQueue:
    def __init__(
        self,
        path: Path,
        destinations: list[str],
        *,
        dedup_window: float = 86400.0,
        retention: float = 0.0,
        poll: float | None = None,
    ) -> None:
        """``poll``: events are appended by another process; look for them this often (seconds)."""
        self.path = path
        self.poll = poll
        self.dedup_window = dedup_window
        self.retention = retention
        self.destinations = list(destinations)
        # Another process appends (``poll``): this one only saves cursors and prunes, and need not
        # fsync. A cursor lost in a crash is an older one: the journal skips what it recorded since.
        self._db = open_db(path, synchronous="FULL" if poll is None else "NORMAL")
        self._readers = threading.local()
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self.head = int(row[0])
        known = dict(self._db.execute("SELECT destination, seq FROM cursors").fetchall())
        # A destination added to the config later starts with the events that arrive from now on.
        start = self.head if known else 0
        self.cursors = {name: int(known.get(name, start)) for name in self.destinations}
        self._db.executemany("INSERT OR IGNORE INTO cursors VALUES (?, ?)", self.cursors.items())
        self._pending: list[_Pending] = []
        self._cursor_updates: dict[str, int] = {}
        self._lock = threading.Condition()
        self._arrived = threading.Condition()
        self._closing = False
        self._last_prune = 0.0
        self.error: str | None = None
        self._writer = threading.Thread(target=self._write_loop, name="relay-queue-writer", daemon=True)
        self._writer.start()

    # -- the collector's side --------------------------------------------------------------
    def append(self, source: str, messages: list[Message]) -> Future[Appended]:
        """Queue ``messages``; the future resolves once they are committed and fsynced."""
        pending = _Pending(source, messages, time.time())
        with self._lock:
            if self._closing:
                pending.done.set_exception(InputError("the queue is closing"))
                return pending.done
            self._pending.append(pending)
            self._lock.notify()
        return pending.done

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._cursor_updates and not self._closing:
                    self._lock.wait(timeout=PRUNE_EVERY)
                    if time.monotonic() - self._last_prune >= PRUNE_EVERY:
                        break
                batch, self._pending = self._pending, []
                cursors, self._cursor_updates = self._cursor_updates, {}
                closing = self._closing
            self._write(batch, cursors)
            if time.monotonic() - self._last_prune >= PRUNE_EVERY:
                self._prune()
            if closing and not batch and not cursors:
                return

    def _write(self, batch: list[_Pending], cursors: dict[str, int]) -> None:
        if not batch and not cursors:
            return
        head = self.head
        try:
            self._db.execute("BEGIN IMMEDIATE")
            fresh = self._claim(batch)
            rows: list[Any] = []
            results = []
            for pending, flags in zip(batch, fresh, strict=True):
                new = [m for m, is_new in zip(pending.messages, flags, strict=True) if is_new]
                rows.extend(value for m in new for value in (pending.received, pending.source, m.raw))
                results.append(Appended(len(new), len(pending.messages) - len(new)))
            for start in range(0, len(rows), 3 * _ROWS):
                chunk = rows[start : start + 3 * _ROWS]
                insert = f"INSERT INTO events (received, source, raw) VALUES {_rows(len(chunk) // 3, 3)}"
                head = self._db.execute(insert, chunk).lastrowid or head  # the rows' seqs follow each other
            if cursors:
                self._db.executemany(
                    "UPDATE cursors SET seq = ? WHERE destination = ?", [(s, d) for d, s in cursors.items()]
                )
            self._db.execute("COMMIT")  # synchronous=FULL: fsynced before it returns
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self.error = f"the queue cannot be written ({exc})"
            for pending in batch:
                pending.done.set_exception(InputError(self.error))
            with self._lock:  # the cursors are saved again with the next group
                for name, seq in cursors.items():
                    self._cursor_updates.setdefault(name, seq)
            time.sleep(0.05)
            return
        self.error = None
        for pending, result in zip(batch, results, strict=True):
            pending.done.set_result(result)
        with self._arrived:
            self.head = max(self.head, head)
            self._arrived.notify_all()

    def _claim(self, batch: list[_Pending]) -> list[list[bool]]:
        """For each event of the group, whether it is new (then remembered, in this transaction).

        Repeats within the group are found here; the ids are then remembered all at once, and only
        if one was remembered before (an SDK's retry) does the group start again, id by id.
        """
        if self.dedup_window <= 0:
            return [[True] * len(pending.messages) for pending in batch]
        fresh: list[list[bool]] = []
        firsts: set[tuple[str, str]] = set()
        claims: list[Any] = []
        for pending in batch:
            flags = []
            for message in pending.messages:
                key = (pending.source, message.message_id)
                flags.append(key not in firsts)
                if flags[-1]:
                    firsts.add(key)
                    claims.extend((pending.source, message.message_id, pending.received))
            fresh.append(flags)
        if _remember_all(self._db, claims):
            return fresh
        self._db.execute("ROLLBACK")
        self._db.execute("BEGIN IMMEDIATE")
        return [
            claim_ids(self._db, p.source, [m.message_id for m in p.messages], p.received, self.dedup_window)
            for p in batch
        ]

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        now = time.time()
        with self._lock:
            low = min(self.cursors.values(), default=self.head)
        try:
            if self.dedup_window > 0:
                self._db.execute("DELETE FROM seen WHERE received < ?", (now - self.dedup_window,))
            self._db.execute("DELETE FROM events WHERE seq <= ? AND received < ?", (low, now - self.retention))
        except sqlite3.Error:
            pass  # pruning is housekeeping: it is tried again later

    # -- a destination's side --------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        return db

    def read_after(self, seq: int, limit: int = 256) -> list[Record]:
        rows = (
            self._reader()
            .execute("SELECT seq, raw, received FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
            .fetchall()
        )
        return [Record(int(s), bytes(raw), float(received)) for s, raw, received in rows]

    def records(self, after: int, stopping: threading.Event) -> Iterator[Record]:
        """Every record after ``after``, waiting for new ones, until ``stopping`` is set."""
        while not stopping.is_set():
            batch = self.read_after(after)
            if not batch:
                with self._arrived:
                    if self.head <= after:  # woken by this process's appends, or looking again
                        self._arrived.wait(timeout=self.poll or 0.2)
                continue
            for record in batch:
                if stopping.is_set():
                    return
                yield record
                after = record.seq

    def save_cursor(self, destination: str, seq: int) -> None:
        """Every event up to ``seq`` has a recorded outcome at ``destination``; saved with the next group."""
        with self._lock:
            if seq > self.cursors.get(destination, 0):
                self.cursors[destination] = seq
                self._cursor_updates[destination] = seq
                self._lock.notify()

    def depth(self, destination: str) -> int:
        """Events accepted that ``destination`` has not finished yet."""
        if self.poll is not None:  # appended by another process: ask the queue
            row = self._reader().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            self.head = max(self.head, int(row[0]))
        return max(0, self.head - self.cursors.get(destination, 0))

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._writer.join(timeout=30)
        self._db.close()


class QueueFeed:
    """One destination's view of the embedded queue (a ``Feed``): positions are sequence numbers."""

    def __init__(self, queue: EmbeddedQueue, destination: str) -> None:
        self.queue = queue
        self.destination = destination
        self.watermark = Watermark(queue.cursors[destination])
        self._received: dict[int, float] = {}

    def lines(self, control: Any) -> Iterator[tuple[int, bytes]]:
        self.watermark.reset()
        self._received.clear()
        for record in self.queue.records(self.watermark.committed, control.stopping):
            self._received[record.seq] = record.received
            self.watermark.handed_out(record.seq)
            yield record.seq, record.raw

    def recorded(self, position: int) -> None:
        self.watermark.recorded(position)

    def received_at(self, position: int) -> float | None:
        return self._received.pop(position, None)

    def checkpoint(self, before_saving: Callable[[], None]) -> None:
        committed = self.watermark.committed  # read first: everything up to it is in the journal
        before_saving()
        self.queue.save_cursor(self.destination, committed)

    def depth(self) -> int:
        return self.queue.depth(self.destination)

    def in_flight(self) -> int:
        return self.watermark.in_flight()

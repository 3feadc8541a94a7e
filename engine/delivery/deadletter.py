"""The dead-letter file: failed and parked events, kept byte for byte for ``relay replay``.

NDJSON: one event per line, with its exact input (``raw``, or ``raw_base64`` when it
is not UTF-8), its original line number, the error, status, attempts and the
preset's hint. Each line is flushed and fsynced before it counts, and the journal
records the event only after that, so nothing is marked done that is not kept.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError

__all__ = ["DeadLetter", "DeadLetterEntry", "NullDeadLetter", "prepare_folder", "read_dead_letter", "why"]


@dataclass(frozen=True)
class DeadLetterEntry:
    """One dead-lettered event, as ``relay replay`` reads it back."""

    key: str
    preset: str
    line: int
    raw: bytes
    status: str  # failed | parked
    order_key: str | None
    fields: dict[str, Any]


class DeadLetter:
    """Appends failed and parked events as NDJSON; each line is fsynced before it counts."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._handle: BinaryIO | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0

    def check_writable(self) -> None:
        """Fail now, naming the path, if failures could not be kept (before any request is sent)."""
        prepare_folder(self.path, "the dead letter")
        try:
            if self.path.exists():
                with open(self.path, "ab"):
                    pass
            elif not os.access(self.path.parent, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise InputError(f"cannot write the dead letter {self.path}: {why(exc)}") from None

    def write(self, entry: dict[str, Any], raw: bytes) -> None:
        """Append ``entry`` with the exact input bytes; returns only once it is on disk."""
        record = dict(entry)
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:  # an abandoned worker after an interrupt: its event stays unrecorded
                return
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "ab")  # noqa: SIM115 - held open for the run
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._handle is not None:
                # After a failed write the buffer may still hold its bytes: the failure was
                # already reported as a RecordError, and closing must not replace it.
                with contextlib.suppress(OSError):
                    self._handle.close()
                self._handle = None


class NullDeadLetter(DeadLetter):
    """Keeps nothing: a dry run acknowledges nothing, so it dead-letters nothing either."""

    def __init__(self) -> None:
        super().__init__("/dev/null")

    def check_writable(self) -> None:
        pass

    def write(self, entry: dict[str, Any], raw: bytes) -> None:
        self.count += 1


def read_dead_letter(path: Path) -> list[DeadLetterEntry]:
    """The entries of a dead-letter file in file order; the last entry per event wins."""
    entries: dict[str, DeadLetterEntry] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the dead letter {path}: {why(exc)}") from None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
            if "raw_base64" in data:
                raw = base64.b64decode(data["raw_base64"])
            elif "raw" in data:
                raw = data["raw"].encode("utf-8")
            else:  # written by relay before 0.2: the parsed event, or the undecodable text
                event = data["event"]
                raw = (event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)).encode("utf-8")
            entry = DeadLetterEntry(
                key=str(data["key"]),
                preset=str(data["preset"]),
                line=int(data["line"]),
                raw=raw,
                status=str(data.get("outcome", "failed")),
                order_key=data.get("order_key"),
                fields=data,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a relay dead-letter entry ({exc})") from None
        # An event written twice (it failed again after a crash) keeps its first place, so a
        # contact's events stay in the order they were first dead-lettered: input order.
        entries[entry.key] = entry
    return list(entries.values())


def prepare_folder(path: Path, what: str) -> None:
    """Create ``path``'s folder, or say plainly why it cannot be (a file in the way, no permission)."""
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"cannot use {what} {path}: {folder} is a file, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot use {what} {path}: cannot create its folder ({why(exc)})") from None


def why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

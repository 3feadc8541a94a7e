"""deliver_stream and replay_dead_letter: whole runs, as ``relay send`` and ``relay replay`` do them.

They wire what a run needs: the transport (with URL redirects for local fakes),
the adaptive rate limit (the preset's, or the settings file's ``relay:`` block),
the journal and the dead-letter file, each checked before the first request is
sent. The CLI, the demo and the bench all call them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ..preset.model import CompiledPreset
from ..preset.settings import RunOptions, Settings
from .deadletter import DeadLetter, NullDeadLetter, read_dead_letter
from .deliver import Deliverer
from .journal import UNRESOLVED, Journal, NullJournal
from .ratelimit import TokenBucket
from .runner import RunControl, StreamStats, read_lines, run_stream
from .transport import HTTPTransport, RedirectTransport, Transport

__all__ = ["deliver_stream", "make_transport", "replay_dead_letter"]

Progress = Callable[[StreamStats], None]


def make_transport(
    preset: CompiledPreset, redirects: Mapping[str, str] | None = None, *, pool_size: int = 10
) -> Transport:
    """The real HTTP transport with the preset's timeouts, redirected when asked."""
    policy = preset.delivery
    transport: Transport = HTTPTransport(policy.connect_timeout, policy.read_timeout, pool_size=pool_size)
    return RedirectTransport(transport, dict(redirects)) if redirects else transport


def _deliverer(
    preset: CompiledPreset,
    settings: Settings,
    transport: Transport,
    options: RunOptions,
    control: RunControl,
    dry_run: bool,
) -> Deliverer:
    policy = preset.delivery
    rate = options.rate or policy.rate
    # Always a bucket: one with no declared rate runs unpaced until a 429 teaches it one.
    bucket = TokenBucket(float(rate) if rate else None, int(options.burst or policy.burst))
    return Deliverer(
        preset,
        settings,
        transport,
        dry_run=dry_run,
        bucket=bucket,
        sleep=control.sleep,
        max_attempts=options.max_attempts,
        deadline=options.deadline,
        batch=options.batch is not False,
    )


def deliver_stream(
    preset: CompiledPreset,
    settings: Settings,
    source: IO[bytes],
    *,
    options: RunOptions | None = None,
    concurrency: int = 1,
    dry_run: bool = False,
    journal_path: Path | str | None = None,
    dead_letter_path: Path,
    redirects: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    control: RunControl | None = None,
    total_bytes: int | None = None,
) -> StreamStats:
    """Deliver every line of ``source``; each ends delivered, dropped, failed or parked.

    ``journal_path`` None journals nothing, and a dry run keeps no dead letter: it
    acknowledges nothing. Raises InputError, before any request is sent, when the
    journal or the dead letter cannot be written; RecordError if that happens mid-run.
    """
    control = control or RunControl()
    journal = Journal(journal_path) if journal_path is not None and not dry_run else NullJournal()
    dead_letter = NullDeadLetter() if dry_run else DeadLetter(dead_letter_path)
    try:
        dead_letter.check_writable()
        transport = make_transport(preset, redirects, pool_size=concurrency)
        try:
            return run_stream(
                _deliverer(preset, settings, transport, options or RunOptions(), control, dry_run),
                read_lines(source),
                journal=journal,
                dead_letter=dead_letter,
                concurrency=concurrency,
                progress=progress,
                control=control,
                total_bytes=total_bytes,
            )
        finally:
            transport.close()
    finally:
        journal.close()
        dead_letter.close()


def replay_dead_letter(
    preset: CompiledPreset,
    settings: Settings,
    path: Path,
    *,
    options: RunOptions | None = None,
    concurrency: int = 1,
    journal_path: Path | None = None,
    redirects: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    control: RunControl | None = None,
) -> StreamStats:
    """Re-deliver a dead letter's events in the order they were dead-lettered.

    Each event is sent exactly as it was received (its original bytes and line
    number). A contact's parked events follow its failed one, so if that fails
    again they stay parked behind it. With the run's journal, every event that now
    succeeds is resolved there too, unblocking its contact for later runs. The
    file is rewritten to hold only what still fails.
    """
    control = control or RunControl()
    entries = read_dead_letter(path)
    journal = Journal(journal_path) if journal_path is not None else NullJournal()
    handle, remaining = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".replay")
    os.close(handle)
    dead_letter = DeadLetter(remaining)
    handled: set[str] = set()
    try:
        transport = make_transport(preset, redirects, pool_size=concurrency)
        try:
            stats = run_stream(
                _deliverer(preset, settings, transport, options or RunOptions(), control, False),
                ((entry.line, entry.raw) for entry in entries),
                journal=journal,
                dead_letter=dead_letter,
                concurrency=concurrency,
                progress=progress,
                control=control,
                replaying=True,
                on_recorded=lambda _line, key, _status: handled.add(key),
            )
        finally:
            transport.close()
        journal.flush()
        # Interrupted (or skipped as already resolved): what was not handled stays, as it was.
        for entry in entries:
            if entry.key not in handled and journal.status(entry.key) in (None, *UNRESOLVED):
                dead_letter.write(_without_raw(entry.fields), entry.raw)
        dead_letter.close()
        os.replace(remaining, path)  # the dead letter now holds only what still fails
        return stats
    finally:
        journal.close()
        dead_letter.close()
        Path(remaining).unlink(missing_ok=True)


def _without_raw(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in ("raw", "raw_base64")}

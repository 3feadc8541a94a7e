"""deliver_stream: one call that delivers an NDJSON stream with a preset, as ``relay send`` does.

It wires the pieces a run needs: the transport (with URL redirects for local
fakes), the rate limit (the preset's, or the settings file's ``relay:`` block),
the journal and the dead-letter file. The CLI, the demo and the bench all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from ..preset.model import CompiledPreset
from ..preset.settings import RunOptions, Settings
from .deliver import Deliverer
from .journal import DeadLetter, Journal, NullJournal
from .ratelimit import TokenBucket
from .runner import StreamStats, read_lines, run_stream
from .transport import RedirectTransport, RequestsTransport, Transport

__all__ = ["deliver_stream", "make_transport"]


def make_transport(
    preset: CompiledPreset, redirects: Mapping[str, str] | None = None, *, pool_size: int = 10
) -> Transport:
    """The real HTTP transport with the preset's timeouts, redirected when asked."""
    policy = preset.delivery
    transport: Transport = RequestsTransport(policy.connect_timeout, policy.read_timeout, pool_size=pool_size)
    return RedirectTransport(transport, dict(redirects)) if redirects else transport


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
    progress: Callable[[StreamStats], None] | None = None,
) -> StreamStats:
    """Deliver every line of ``source``; each ends delivered, dropped or dead-lettered.

    ``journal_path`` None journals nothing (dry runs, replays of a dead letter).
    """
    options = options or RunOptions()
    policy = preset.delivery
    rate = options.rate or policy.rate
    bucket = TokenBucket(float(rate), int(options.burst or policy.burst)) if rate else None
    transport = make_transport(preset, redirects, pool_size=concurrency)
    deliverer = Deliverer(
        preset, settings, transport, dry_run=dry_run, bucket=bucket, max_attempts=options.max_attempts
    )
    journal = Journal(journal_path) if journal_path is not None else NullJournal()
    dead_letter = DeadLetter(dead_letter_path)
    try:
        return run_stream(
            deliverer,
            read_lines(source),
            journal=journal,
            dead_letter=dead_letter,
            concurrency=concurrency,
            progress=progress,
        )
    finally:
        journal.close()
        dead_letter.close()
        transport.close()

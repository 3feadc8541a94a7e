"""Helpers for the batching tests: a preset's fake made ready, a stream delivered batched or not."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from relay import CompiledPreset
from relay.authoring.golden import discover_cases
from relay.delivery.runner import StreamStats
from relay.delivery.stream import deliver_stream
from relay.fakes import FakeServer, FakeVendor, fake_for, redirects_for
from relay.preset.settings import RunOptions


def settings_of(preset: CompiledPreset) -> dict[str, Any]:
    """The fake settings of the preset's first golden case (every bundled preset has some)."""
    return dict(next(case.settings for case in discover_cases(preset.name) if not case.batch))


def ready_fake(preset: CompiledPreset, settings: dict[str, Any], **tweaks: Any) -> FakeVendor:
    """The preset's fake, accepting ``settings``, with what a configured account has (Mailjet's
    contact properties), and asynchronous jobs that end at their first status read."""
    vendor = fake_for(preset, preset.resolve_settings(settings, environ={}))
    properties = preset.constants.get("properties")
    if isinstance(properties, dict) and hasattr(vendor, "define_property"):
        for name, datatype in properties.items():
            if name not in tweaks.get("undefined", ()):
                vendor.define_property(name, datatype)
    bulk = getattr(vendor, "bulk", None)
    if bulk is not None and hasattr(bulk, "polls_to_finish"):
        bulk.polls_to_finish = tweaks.get("polls_to_finish", 1)
    return vendor


def ndjson(events: list[Any]) -> bytes:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events).encode()


def deliver(
    preset: CompiledPreset,
    server: FakeServer,
    events: list[Any],
    folder: Path,
    *,
    batch: bool,
    settings: dict[str, Any] | None = None,
    concurrency: int = 1,
    dry_run: bool = False,
) -> StreamStats:
    folder.mkdir(parents=True, exist_ok=True)
    resolved = preset.resolve_settings(settings or settings_of(preset), environ={})
    return deliver_stream(
        preset,
        resolved,
        io.BytesIO(ndjson(events)),
        options=RunOptions(batch=batch, rate=10_000, burst=10_000),
        concurrency=concurrency,
        dry_run=dry_run,
        journal_path=folder / "journal.sqlite",
        dead_letter_path=folder / "dead.ndjson",
        redirects=redirects_for(preset, server.url),
    )


def final_state(server: FakeServer) -> Any:
    """The fake's comparable state (no vendor-assigned IDs, counters or times), once every job it
    runs has finished; for the Mailjet and Mailgun fakes, their table, in any order."""
    vendor: Any = server.vendor
    if hasattr(vendor, "contact_state"):
        with vendor.lock:
            vendor.settle()
            return vendor.contact_state()
    _title, _headers, rows = vendor.table()
    return sorted(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False) for row in rows)


def dead_letter(folder: Path) -> list[dict[str, Any]]:
    path = folder / "dead.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def posts(server: FakeServer, contains: str) -> list[dict[str, Any]]:
    return [r for r in server.requests("POST") if contains in r["path"]]


def open_jobs(journal: Path) -> int:
    """How many asynchronous jobs the journal holds open (submitted, not yet reported)."""
    import sqlite3

    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT COUNT(*) FROM batch_jobs").fetchone()[0])
    except sqlite3.Error:
        return 0

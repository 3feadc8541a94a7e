"""Batching: HTTP requests, client CPU and throughput, batched against one request per event.

For every preset that batches, the same generated stream is delivered twice by
``deliver_stream`` to the preset's fake (``relay fake``, in its own process): batched (the
default) and with ``relay: {batch: false}``. Three figures per preset:

- requests per 10,000 events (every HTTP request: bulk calls, job polls, error reports, reads),
  against an unlimited fake; goal: at least 100x fewer;
- client CPU per delivered event (this process's CPU over the run), same runs; reported;
- throughput against the fake limited to the vendor's request rate (429 past it), relay pacing
  itself at the preset's declared rate as it does in production; goal: at least 50x the
  unbatched events/s. Unbatched, a stream at that rate takes minutes, so it runs a shorter
  stream: events/s is what is compared.

Both runs must deliver and drop the same events and leave the fake in the same final state;
otherwise no figure is printed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay import CompiledPreset, RunOptions, deliver_stream, load_preset
from relay.bundled import presets_dir

from .common import ROOT, Row, child_env, require, row, settings_for
from .events import generate

__all__ = ["BATCHED", "figure_batching"]

#: The presets that batch, with what their fake needs beyond the settings (``relay fake --config``).
BATCHED: dict[str, dict[str, Any]] = {
    "mailjet": {},
    "mailgun": {},
    "sendgrid": {},
    "brevo": {},
    "klaviyo": {},
    "mailchimp": {},
    "customerio": {},
    "facebook_capi": {},
}
#: The request rate the throughput figure limits the fake to: the preset's declared rate, else
#: the vendor's published one (Customer.io: "a fair-use limit of 100 requests per second" on the
#: Track API), else 10/s (Mailchimp limits simultaneous connections, Meta throttles by app usage:
#: neither publishes a request rate).
RATES = {"customerio": 100}
DEFAULT_RATE = 10
REQUEST_GOAL = 100.0
THROUGHPUT_GOAL = 50.0


@dataclass(frozen=True)
class Pass:
    events: int
    delivered: int
    dropped: int
    failed: int
    requests: int
    seconds: float
    cpu_seconds: float
    state: str

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(1, self.delivered) * 1e6


@contextmanager
def vendor(preset: CompiledPreset, settings: dict[str, Any], rate: int | None) -> Iterator[str]:
    """``relay fake`` for the preset in its own process, accepting ``settings``; its URL."""
    config = dict(BATCHED[preset.name])
    properties = preset.constants.get("properties")
    if isinstance(properties, dict):
        config.setdefault("properties", properties)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "settings.json").write_text(json.dumps(settings))
        (Path(scratch) / "config.json").write_text(json.dumps(config))
        limit = ["--rate-limit", str(rate)] if rate else []
        args = [sys.executable, "-m", "relay", "fake", preset.name, "--settings", str(Path(scratch) / "settings.json"),
                "--config", str(Path(scratch) / "config.json"), *limit]  # fmt: skip
        with subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=child_env()) as process:
            try:
                assert process.stderr is not None
                yield process.stderr.readline().split("listening on ", 1)[1].split()[0]
            finally:
                process.terminate()


def _state(url: str) -> str:
    import requests

    return json.dumps(_without_ids(requests.get(f"{url}/_fake/state", timeout=30).json()), sort_keys=True)


#: What a fake's state holds that differs between two runs leaving the same contacts: the IDs
#: it assigns in creation order, and its jobs (a batched run has few, an unbatched one none).
_VOLATILE = ("ID", "id", "ContactID", "jobs", "import_jobs", "processes")


def _without_ids(value: Any) -> Any:
    """A fake's state without what differs between runs that leave the same contacts."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return sorted((_without_ids(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def deliver(preset: CompiledPreset, events: list[dict[str, Any]], *, batch: bool, rate: int | None) -> Pass:
    """One pass of ``events`` to a fresh fake; ``rate``: the fake's limit and relay's own pace."""
    settings = settings_for(preset.name)
    resolved = preset.resolve_settings(settings, environ={})
    lines = "".join(json.dumps(event) + "\n" for event in events).encode()
    pace = RunOptions(batch=batch, rate=rate, burst=rate) if rate else RunOptions(batch=batch, rate=1e6, burst=10**4)
    with vendor(preset, settings, rate) as url, tempfile.TemporaryDirectory() as scratch:
        from relay.demo import fake_registry  # relay.fakes, which mypy cannot see through the source layout

        redirects = fake_registry().redirects_for(preset, url)
        cpu, start = time.process_time(), time.perf_counter()
        stats = deliver_stream(
            preset, resolved, io.BytesIO(lines), options=pace, concurrency=4,
            journal_path=Path(scratch) / "journal.sqlite", dead_letter_path=Path(scratch) / "dead.ndjson",
            redirects=redirects,
        )  # fmt: skip
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        state = _state(url)
    require(stats.unfinished == 0 and stats.parked == 0, f"{preset.name}: {stats.as_dict()}")
    return Pass(len(events), stats.delivered, stats.dropped, stats.failed, stats.requests, seconds, cpu_seconds, state)


def _same(preset: str, one: Pass, other: Pass, *, state: bool = True) -> None:
    require((one.delivered, one.dropped, one.failed) == (other.delivered, other.dropped, other.failed),
            f"{preset}: batched and unbatched outcomes differ: {one} vs {other}")  # fmt: skip
    require(not state or one.state == other.state, f"{preset}: batched and unbatched final states differ")


def figure_batching(quick: bool) -> list[Row]:
    count, limited_unbatched = (1_000, 60) if quick else (10_000, 300)
    rows: list[Row] = []
    for name in BATCHED:
        preset = load_preset(presets_dir() / name)
        events = list(generate(count, seed=11))
        unbatched = deliver(preset, events, batch=False, rate=None)
        batched = deliver(preset, events, batch=True, rate=None)
        _same(name, batched, unbatched)
        per_10k = 10_000 / count
        ratio = unbatched.requests / batched.requests
        rows.append(row(
            f"batch {name}: HTTP requests per 10,000 events",
            f"{batched.requests * per_10k:,.0f} batched", f"{unbatched.requests * per_10k:,.0f} one per event",
            ratio=ratio, goal=f">= {REQUEST_GOAL:g}x fewer", met=ratio >= REQUEST_GOAL,
            note=f"{count:,} generated events ({unbatched.delivered:,} delivered, the rest dropped), same final state",
        ))  # fmt: skip
        rows.append(row(
            f"batch {name}: client CPU per delivered event",
            f"{batched.cpu_us:,.0f} µs batched", f"{unbatched.cpu_us:,.0f} µs one per event",
            ratio=unbatched.cpu_us / batched.cpu_us, goal="report", met=None,
        ))  # fmt: skip
        rate = int(preset.delivery.rate or RATES.get(name, DEFAULT_RATE))
        slow = deliver(preset, events[: min(limited_unbatched, 15 * rate)], batch=False, rate=rate)
        fast = deliver(preset, events, batch=True, rate=rate)
        _same(name, fast, batched, state=False)
        ratio = fast.per_second / slow.per_second
        rows.append(row(
            f"batch {name}: throughput at {rate} requests/s",
            f"{fast.per_second:,.0f} events/s batched", f"{slow.per_second:,.1f} events/s one per event",
            ratio=ratio, goal=f">= {THROUGHPUT_GOAL:g}x", met=ratio >= THROUGHPUT_GOAL,
            note=f"the fake answers 429 past {rate} requests/s; "
            f"{fast.events:,} events batched, {slow.events:,} unbatched",
        ))  # fmt: skip
    return rows

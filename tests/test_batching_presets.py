"""Every batched preset against its fake: one bad item, one refused item, a whole-batch 429, and
a crash in the middle of a batch (a job is polled after it, never sent again; a synchronous batch
is sent again, and lands the same). Mailjet's own, fuller versions are in test_batching.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from relay import CompiledPreset
from relay.cli import main
from relay.fakes import FakeServer, Fault, redirects_for
from tests.batch_helpers import dead_letter, deliver, final_state, ndjson, posts, ready_fake, settings_of
from tests.paths import ROOT


def identify(email: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": email.partition("@")[0], "traits": {"email": email, **traits}}


@dataclass(frozen=True)
class Scenario:
    """How to exercise one preset's batching against its fake."""

    #: A substring of the bulk endpoint's path.
    bulk: str
    #: An event that cannot become an item (fails alone, before any batch is built), and why.
    bad_event: dict[str, Any]
    bad_reason: str
    #: Make the vendor refuse the item of one address; the words its refusal carries.
    refuse: Callable[[FakeServer, str], None]
    refused_words: str
    #: Events for the crash test; whether the bulk API answers with a job to poll.
    job: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _mailgun_refuses(server: FakeServer, address: str) -> None:
    body = json.dumps({"message": "The 'address' parameter should be a valid email address"})
    encoded = quote(address)  # the members travel as a form field
    server.inject(Fault("status", status=400, times=99, path_contains="members.json", body_contains=encoded, body=body))


SCENARIOS: dict[str, Scenario] = {
    "mailgun": Scenario(
        bulk="members.json",
        bad_event={
            "type": "track",
            "event": "Order Completed",
            "properties": {"revenue": "lots"},
            "context": {"traits": {"email": "bad@example.com"}},
        },
        bad_reason="not a number",
        refuse=_mailgun_refuses,
        refused_words="should be a valid email address",
    ),
}


@pytest.fixture(params=sorted(SCENARIOS))
def case(request: pytest.FixtureRequest, presets: dict[str, CompiledPreset]) -> tuple[CompiledPreset, Scenario]:
    return presets[request.param], SCENARIOS[request.param]


def test_one_bad_event_fails_alone_and_the_batch_goes(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    preset, scenario = case
    events = [identify("a@example.com"), scenario.bad_event, identify("c@example.com")]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        stats = deliver(preset, server, events, tmp_path, batch=True)
        assert (stats.delivered, stats.failed) == (2, 1), stats.failures
        assert len(posts(server, scenario.bulk)) == 1
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 2 and scenario.bad_reason in failed["error"]


def test_a_refused_item_fails_its_event_alone(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    preset, scenario = case
    events = [identify(f"u{n}@example.com") for n in range(6)]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        scenario.refuse(server, "u3@example.com")
        stats = deliver(preset, server, events, tmp_path, batch=True)
        assert (stats.delivered, stats.failed) == (5, 1), stats.failures
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 4 and scenario.refused_words in failed["error"] and failed["hint"]


def test_a_whole_batch_429_is_retried(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    preset, scenario = case
    events = [identify(f"u{n}@example.com") for n in range(10)]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        server.inject(Fault("status", status=429, times=2, path_contains=scenario.bulk))
        stats = deliver(preset, server, events, tmp_path / "run", batch=True)
        assert (stats.delivered, stats.failed, stats.throttled) == (10, 0, 2)
        assert [r["status"] for r in posts(server, scenario.bulk)] == [429, 429, 200]
        state = final_state(server)
    with FakeServer(ready_fake(preset, settings_of(preset))) as reference:
        deliver(preset, reference, events, tmp_path / "reference", batch=False)
        assert state == final_state(reference)


def _command(preset: CompiledPreset, server: FakeServer, folder: Path, events: Path) -> list[str]:
    settings = folder / "settings.json"
    settings.write_text(json.dumps(settings_of(preset)))
    redirects = [f"--redirect={source}={target}" for source, target in redirects_for(preset, server.url).items()]
    return ["send", preset.name, str(events), "--settings", str(settings), "--no-progress", *redirects,
            "--journal", str(folder / "journal.sqlite"), "--dead-letter", str(folder / "dead.ndjson")]  # fmt: skip


def test_a_crash_in_the_middle_of_a_batch_loses_nothing(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    """Killed while the bulk request is in flight: the next run polls its job (never sending it
    again), or, for a synchronous bulk API, sends the batch again, which lands the same."""
    preset, scenario = case
    events = [identify(f"u{n}@example.com", first_name=f"U{n}") for n in range(12)]
    path = tmp_path / "events.ndjson"
    path.write_bytes(ndjson(events))
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        server.inject(Fault("delay", seconds=3.0, path_contains=scenario.bulk))
        args = _command(preset, server, tmp_path, path)
        crashed = subprocess.Popen([sys.executable, "-m", "relay", *args], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not any(scenario.bulk in path for _, path in server.arrivals) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            crashed.send_signal(signal.SIGKILL)  # the bulk request is in flight, being answered slowly
            crashed.wait()
        time.sleep(3.0)  # the vendor finishes what it was given
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        state = final_state(server)
        sent = len(posts(server, scenario.bulk))
    assert sent == (1 if scenario.job else 2)
    with FakeServer(ready_fake(preset, settings_of(preset))) as reference:
        deliver(preset, reference, events, tmp_path / "reference", batch=False)
        assert state == final_state(reference)

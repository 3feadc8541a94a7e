"""Every batched preset against its fake: one bad item, one refused item, a whole-batch 429, and
a crash in the middle of a batch (a job is polled after it, never sent again; a synchronous batch
is sent again, and lands the same). Mailjet's own, fuller versions are in test_batching.py.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from relay import CompiledPreset
from relay.cli import main
from relay.fakes import FakeServer, Fault, JobTiming, redirects_for
from tests.batch_helpers import dead_letter, deliver, final_state, ndjson, open_jobs, ready_fake, settings_of
from tests.paths import ROOT


def identify(email: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": email.partition("@")[0], "traits": {"email": email, **traits}}


@dataclass(frozen=True)
class Scenario:
    """How to exercise one preset's batching against its fake."""

    #: A pattern (re.search) of the bulk endpoint's path, and its method.
    bulk: str
    #: An event that cannot become an item (fails alone, before any batch is built), and why.
    bad_event: dict[str, Any]
    bad_reason: str
    #: Make the vendor refuse the item of one address; the words its refusal carries.
    refuse: Callable[[FakeServer, str], None]
    refused_words: str
    method: str = "POST"
    #: What a fault's path must hold to hit the bulk endpoint (default: ``bulk`` as text).
    fault_path: str = ""
    #: For a bulk API that answers with a job: keep jobs running, then let them all end.
    hold: Callable[[Any], None] | None = None
    release: Callable[[Any], None] | None = None
    #: The status of an accepted bulk request.
    accepted: int = 200
    #: A good event for an address (an identify, unless the preset wants another kind).
    make: Callable[..., dict[str, Any]] = identify
    extra: dict[str, Any] = field(default_factory=dict)


def bulk_calls(server: FakeServer, scenario: Scenario) -> list[dict[str, Any]]:
    return [r for r in server.requests(scenario.method) if re.search(scenario.bulk, r["path"])]


def _hold(vendor: Any) -> None:
    vendor.timing = JobTiming(polls=10**9, seconds=None)


def _release(vendor: Any) -> None:
    vendor.settle()
    vendor.timing = JobTiming()


def _fail_item(server: FakeServer, address: str) -> None:
    server.vendor.fail_item(address)  # type: ignore[attr-defined]


#: A fixed time within Meta's 7 days, so two runs send the same events.
RECENT = datetime.fromtimestamp(time.time() // 60 * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conversion(email: str, **properties: Any) -> dict[str, Any]:
    """A website conversion, as Meta's Conversions API takes one (a user agent and a page)."""
    local = email.partition("@")[0]
    return {"type": "track", "event": "Signed Up", "userId": local, "messageId": f"msg-{local}", "timestamp": RECENT,
            "properties": properties, "context": {"traits": {"email": email}, "userAgent": "Mozilla/5.0 (test)",
                                                  "page": {"url": "https://shop.example.com/"}}}  # fmt: skip


def _refuse_conversion(server: FakeServer, address: str) -> None:
    server.vendor.fail_item(f"msg-{address.partition('@')[0]}")  # type: ignore[attr-defined]  # no address: hashed


def _mailgun_refuses(server: FakeServer, address: str) -> None:
    body = json.dumps({"message": "The 'address' parameter should be a valid email address"})
    encoded = quote(address)  # the members travel as a form field
    server.inject(Fault("status", status=400, times=99, path_contains="members.json", body_contains=encoded, body=body))


#: What the fakes of bulk APIs that run jobs share: an item fault fails one item in the job's
#: report; jobs can be held running; the bulk request is accepted with 202.
JOBS: dict[str, Any] = {"refuse": _fail_item, "hold": _hold, "release": _release, "accepted": 202}

SCENARIOS: dict[str, Scenario] = {
    "sendgrid": Scenario(
        bulk="/v3/marketing/contacts",
        method="PUT",
        bad_event=identify("bad@example.com", first_name="X" * 60),
        bad_reason="fails its item schema",
        refused_words="could not be processed",
        **JOBS,
    ),
    "brevo": Scenario(
        bulk="/v3/contacts/import",
        bad_event=identify("bad@example.com", plan={"tier": "gold"}),
        bad_reason="fails its item schema",
        refused_words="invalid email address",
        **JOBS,
    ),
    "klaviyo": Scenario(
        bulk="/api/profile-bulk-import-jobs",
        bad_event=identify("bad@example.com", company={"name": "Acme"}),
        bad_reason="fails its item schema",
        refused_words="could not be imported",
        **JOBS,
    ),
    "mailchimp": Scenario(
        bulk=r"^/3\.0/lists/[^/]+$",
        fault_path="/3.0/lists/",
        bad_event=identify("bad@example.com", first_name={"given": "X"}),
        bad_reason="fails its item schema",
        refuse=_fail_item,
        refused_words="could not be added",
    ),
    "customerio": Scenario(
        bulk="/api/v2/batch",
        bad_event=identify("bad@example.com", plan="x" * 1200),
        bad_reason="fails its item schema",
        refuse=_fail_item,
        refused_words="could not be processed",
    ),
    "facebook_capi": Scenario(
        bulk=r"/events$",
        fault_path="/events",
        bad_event={**conversion("bad@example.com"), "event": "Order Completed", "properties": {"revenue": "lots"}},
        bad_reason="not a number",
        refuse=_refuse_conversion,
        refused_words="the event was refused",
        make=conversion,
    ),
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
    events = [scenario.make("a@example.com"), scenario.bad_event, scenario.make("c@example.com")]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        stats = deliver(preset, server, events, tmp_path, batch=True)
        assert (stats.delivered, stats.failed) == (2, 1), stats.failures
        assert len(bulk_calls(server, scenario)) == 1
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 2 and scenario.bad_reason in failed["error"]


def test_a_refused_item_fails_its_event_alone(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    preset, scenario = case
    events = [scenario.make(f"u{n}@example.com") for n in range(6)]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        scenario.refuse(server, "u3@example.com")
        stats = deliver(preset, server, events, tmp_path, batch=True)
        assert (stats.delivered, stats.failed) == (5, 1), stats.failures
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 4 and scenario.refused_words in failed["error"] and failed["hint"]


def test_a_whole_batch_429_is_retried(case: tuple[CompiledPreset, Scenario], tmp_path: Path) -> None:
    preset, scenario = case
    events = [scenario.make(f"u{n}@example.com") for n in range(10)]
    with FakeServer(ready_fake(preset, settings_of(preset))) as server:
        server.inject(Fault("status", status=429, times=2, path_contains=scenario.fault_path or scenario.bulk))
        stats = deliver(preset, server, events, tmp_path / "run", batch=True)
        assert (stats.delivered, stats.failed, stats.throttled) == (10, 0, 2)
        assert [r["status"] for r in bulk_calls(server, scenario)] == [429, 429, scenario.accepted]
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
    """Killed in the middle of a batch: the next run polls its job (never sending the batch
    again); a synchronous bulk API's batch, killed in flight, is sent again and lands the same."""
    preset, scenario = case
    events = [scenario.make(f"u{n}@example.com", first_name=f"U{n}") for n in range(12)]
    path = tmp_path / "events.ndjson"
    path.write_bytes(ndjson(events))
    vendor = ready_fake(preset, settings_of(preset))
    with FakeServer(vendor) as server:
        if scenario.hold is not None:
            scenario.hold(vendor)  # the job keeps running: relay dies while it polls
        else:
            server.inject(Fault("delay", seconds=3.0, path_contains=scenario.fault_path or scenario.bulk))
        args = _command(preset, server, tmp_path, path)
        crashed = subprocess.Popen([sys.executable, "-m", "relay", *args], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if scenario.hold is not None and open_jobs(tmp_path / "journal.sqlite"):
                    break
                if scenario.hold is None and any(re.search(scenario.bulk, path) for _, path in server.arrivals):
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the batch never went out")
        finally:
            crashed.send_signal(signal.SIGKILL)
            crashed.wait()
        if scenario.release is not None:
            scenario.release(vendor)  # the vendor's job ends while relay is down
        else:
            time.sleep(3.0)  # the vendor finishes what it was given
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        state = final_state(server)
        sent = len(bulk_calls(server, scenario))
    assert sent == (1 if scenario.hold is not None else 2)
    with FakeServer(ready_fake(preset, settings_of(preset))) as reference:
        deliver(preset, reference, events, tmp_path / "reference", batch=False)
        assert state == final_state(reference)

"""relay send / replay / check against the fake servers: streams, order, dead letters, crashes."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay import CompiledPreset
from relay.cli import main
from relay.fakes import FakeServer, MailjetFake
from tests.delivery_helpers import MAILJET_SETTINGS, fake_for
from tests.paths import ROOT


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def signup(email: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Signed Up",
        "properties": {"method": "email"},
        "context": {"traits": {"email": email}},
        **extra,
    }


def ndjson(events: list[Any]) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


@pytest.fixture()
def mailjet_fake(mailjet: CompiledPreset) -> Iterator[FakeServer]:
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS)) as server:
        yield server


def relay(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def send_args(tmp_path: Path, server: FakeServer, events: Path, *extra: str, rate: float | None = None) -> list[str]:
    """One request per event (batching off): these tests pin the unbatched path; test_batching.py
    proves the same guarantees batched."""
    run_options: dict[str, Any] = {"relay": {"batch": False}}
    if rate:
        run_options["relay"]["rate_limit"] = {"rate": rate, "burst": 10}
    settings = write(tmp_path / "settings.json", {**MAILJET_SETTINGS, **run_options})
    return [
        "send",
        "mailjet",
        str(events),
        "--settings",
        str(settings),
        "--no-progress",
        "--redirect",
        f"https://api.mailjet.com={server.url}",
        "--journal",
        str(tmp_path / "journal.sqlite"),
        "--dead-letter",
        str(tmp_path / "dead.ndjson"),
        *extra,
    ]


def test_bad_lines_are_reported_and_do_not_stop_the_stream(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(
        ndjson([signup("a@example.com"), "{not json", "", "[1, 2]", signup("b@example.com"), {"type": "page"}])
    )
    code, out = relay(*send_args(tmp_path, mailjet_fake, events, "--summary-json", str(tmp_path / "s.json")))
    assert code == 1  # something failed
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["events"], summary["delivered"], summary["dropped"], summary["failed"]) == (5, 2, 1, 2)
    dead = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert [(d["line"], d["error"].split(":")[0]) for d in dead] == [(2, "line 2"), (4, "line 4")]
    assert "not valid JSON" in dead[0]["error"] and "JSON object" in dead[1]["error"]
    assert "line 2: not valid JSON" in out
    vendor = mailjet_fake.vendor
    assert isinstance(vendor, MailjetFake)
    assert {c["Email"] for c in vendor.snapshot()["contacts"]} == {"a@example.com", "b@example.com"}


def test_dry_run_sends_nothing(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(ndjson([signup("a@example.com"), {"type": "page"}]))
    code, out = relay(
        *send_args(tmp_path, mailjet_fake, events, "--dry-run", "--summary-json", str(tmp_path / "s.json"))
    )
    assert code == 0, out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["rendered"], summary["dropped"], summary["requests"]) == (1, 1, 0)
    assert mailjet_fake.requests() == []
    assert "sec-test-0000" not in out


def test_rerunning_the_same_command_skips_what_the_journal_recorded(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(ndjson([signup(f"u{i}@example.com") for i in range(5)]))
    assert relay(*send_args(tmp_path, mailjet_fake, events))[0] == 0
    assert relay(*send_args(tmp_path, mailjet_fake, events, "--summary-json", str(tmp_path / "s.json")))[0] == 0
    assert json.loads((tmp_path / "s.json").read_text())["skipped"] == 5
    assert len(mailjet_fake.requests("POST")) == 5
    assert relay(*send_args(tmp_path, mailjet_fake, events, "--fresh"))[0] == 0
    assert len(mailjet_fake.requests("POST")) == 10


def subscription_stream(contacts: int, per_contact: int, seed: int) -> list[dict[str, Any]]:
    """Interleaved Subscribed/Unsubscribed events; each contact's last event decides its state."""
    rng = random.Random(seed)
    queues = [
        [("Subscribed" if rng.random() < 0.5 else "Unsubscribed", f"c{c}@example.com") for _ in range(per_contact)]
        for c in range(contacts)
    ]
    events = []
    while any(queues):
        queue_ = rng.choice([q for q in queues if q])
        name, email = queue_.pop(0)
        events.append({"type": "track", "event": name, "properties": {}, "context": {"traits": {"email": email}}})
    return events


def final_lists(server: FakeServer) -> dict[str, Any]:
    vendor = server.vendor
    assert isinstance(vendor, MailjetFake)
    return {c["Email"]: c["Lists"] for c in vendor.snapshot()["contacts"]}


def test_per_contact_order_holds_under_concurrency(tmp_path: Path, mailjet: CompiledPreset) -> None:
    events = subscription_stream(contacts=12, per_contact=12, seed=3)
    path = tmp_path / "events.ndjson"
    path.write_text(ndjson(events))
    states = []
    for concurrency in ("1", "16"):
        run_dir = tmp_path / concurrency
        run_dir.mkdir()
        # random per-request latency shuffles the timing of concurrent requests
        with FakeServer(fake_for(mailjet, MAILJET_SETTINGS), latency=(0.0, 0.004), seed=11) as server:
            code, out = relay(*send_args(run_dir, server, path, "--concurrency", concurrency, rate=2000))
            assert code == 0, out
            states.append(final_lists(server))
    assert states[0] == states[1]
    last: dict[str, str] = {}
    for event in events:
        last[event["context"]["traits"]["email"]] = event["event"]
    expected = {
        email: {"10001": "subscribed" if name == "Subscribed" else "unsubscribed"} for email, name in last.items()
    }
    assert states[1] == expected


def test_dead_letter_and_replay(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    """A missing list stops the destination: the first event fails with the hint, the rest wait parked."""
    events = tmp_path / "events.ndjson"
    events.write_text(ndjson([signup(f"u{i}@example.com") for i in range(3)] + [{"type": "page"}]))
    wrong = write(tmp_path / "wrong.json", {**MAILJET_SETTINGS, "list_id": 999, "relay": {"batch": False}})
    args = send_args(tmp_path, mailjet_fake, events, "--concurrency", "1")
    args[args.index("--settings") + 1] = str(wrong)
    code, out = relay(*args)
    assert code == 1 and "Contact list 999 does not exist" in out and "the destination stopped" in out
    dead_path = tmp_path / "dead.ndjson"
    dead = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert [(d["outcome"], d["status"], d["attempts"]) for d in dead] == [
        ("failed", 404, 1),
        ("parked", None, 0),
        ("parked", None, 0),
    ]
    assert dead[0]["hint"] and all("the destination stopped at line 1" in d["error"] for d in dead[1:])
    assert all(d["event"]["context"]["traits"]["email"].startswith("u") for d in dead)
    assert len(mailjet_fake.requests("POST")) == 1
    assert "sec-test-0000" not in dead_path.read_text()
    right = write(tmp_path / "right.json", {**MAILJET_SETTINGS, "relay": {"batch": False}})
    code, out = relay(
        "replay",
        str(dead_path),
        "--settings",
        str(right),
        "--no-progress",
        "--redirect",
        f"https://api.mailjet.com={mailjet_fake.url}",
    )
    assert code == 0, out
    assert dead_path.read_text() == ""  # drained
    assert len(final_lists(mailjet_fake)) == 3


def test_check_reports_and_fixes_missing_properties(tmp_path: Path, mailjet: CompiledPreset) -> None:
    settings = write(tmp_path / "settings.json", MAILJET_SETTINGS)
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS, define_properties=False)) as server:
        base = ["check", "mailjet", "--settings", str(settings), "--redirect", f"https://api.mailjet.com={server.url}"]
        code, out = relay(*base)
        assert code == 1
        assert "ok   credentials_and_list" in out
        assert "contact property 'last_order_value' must exist with datatype float" in out
        assert "--fix" in out
        code, out = relay(*base, "--fix")
        assert code == 0, out
        assert out.count("fixed:") == 5  # first_name and last_name exist by default
        assert relay(*base)[0] == 0
    wrong = write(tmp_path / "wrong.json", {**MAILJET_SETTINGS, "secret_key": "nope-nope"})
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS)) as server:
        code, out = relay(
            "check", "mailjet", "--settings", str(wrong), "--redirect", f"https://api.mailjet.com={server.url}"
        )
    assert code == 1 and "The API Key / Secret Key pair was refused" in out and "nope-nope" not in out


def test_crash_and_resume(tmp_path: Path, mailjet: CompiledPreset) -> None:
    """SIGKILL mid-stream, run the same command again: all delivered, nothing acknowledged resent."""
    count = 240
    events = tmp_path / "events.ndjson"
    events.write_text(ndjson([signup(f"user{i}@example.com") for i in range(count)]))
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS), latency=(0.005, 0.015)) as server:
        args = [sys.executable, "-m", "relay", *send_args(tmp_path, server, events, "--concurrency", "4", rate=80)]
        journal = tmp_path / "journal.sqlite"
        first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        acknowledged: set[int] = set()
        while time.monotonic() < deadline and len(acknowledged) < 40:
            time.sleep(0.05)
            acknowledged = _journaled_lines(journal)
        first.send_signal(signal.SIGKILL)
        first.wait()
        acknowledged = _journaled_lines(journal)
        assert 0 < len(acknowledged) < count, "the crash must come mid-stream"
        sent_before = len(server.requests("POST"))
        second = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        resent = [json.loads(r["body"])["Email"] for r in server.requests("POST")[sent_before:]]
        contacts = {c["Email"] for c in server.state()["contacts"]}
    assert contacts == {f"user{i}@example.com" for i in range(count)}  # at least once, every one
    acknowledged_emails = {f"user{line - 1}@example.com" for line in acknowledged}
    assert not acknowledged_emails & set(resent)  # nothing acknowledged is sent again


def _journaled_lines(journal: Path) -> set[int]:
    if not journal.exists():
        return set()
    try:
        with sqlite3.connect(journal, timeout=1) as db:
            return {row[0] for row in db.execute("SELECT line FROM outcomes WHERE status = 'delivered'")}
    except sqlite3.OperationalError:
        return set()


def test_progress_display_runs(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(ndjson([signup(f"p{i}@example.com") for i in range(20)] + ["{bad"]))
    args = send_args(tmp_path, mailjet_fake, events)
    args[args.index("--no-progress")] = "--progress"
    code, out = relay(*args)
    assert code == 1  # the bad line failed; the progress display itself must not
    assert "sent" in out and "dropped" in out and "failed" in out

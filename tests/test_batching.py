"""Batching: the same outcomes and the same final state as one request per event, far fewer requests.

Pure parts first (how events are grouped into waves and batches), then whole runs against
the fakes: the final state batched equals unbatched; one bad item, one refused item, a
whole-batch 429, a whole-batch 4xx (split down to the offender), a stop answer, and a
crash while a job runs (the next run polls it, never sends it again).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.events import generate
from relay import CompiledPreset, load_preset
from relay.cli import main
from relay.fakes import FakeServer, Fault, MailjetFake, redirects_for
from relay.runtime.batch import BatchItem, Pending, chunks, coalesce
from relay.runtime.batch_render import render_batch
from relay.runtime.decide import decide
from tests.batch_helpers import dead_letter, deliver, final_state, ndjson, open_jobs, posts, ready_fake, settings_of
from tests.paths import ROOT

# -- pure: waves, batches, merging ---------------------------------------------------------------


def test_a_wave_takes_one_unit_per_contact_oldest_first_and_the_rest_wait() -> None:
    pending: Pending[str] = Pending()
    for contact, event in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("a", "a3")]:
        pending.add(contact, event)
    assert pending.take(10) == [["a1"], ["b1"], ["c1"]]
    assert pending.take(10, busy={"a"}) == []
    assert pending.take(10) == [["a2"]]
    assert pending.take(1) == [["a3"]] and len(pending) == 0


def test_coalescing_takes_a_contacts_run_of_events_with_the_same_partition() -> None:
    pending: Pending[tuple[str, str]] = Pending(coalesce=True, partition=lambda event: event[1])
    for contact, event in [("a", ("a1", "L1")), ("b", ("b1", "L1")), ("a", ("a2", "L1")), ("a", ("a3", "L2"))]:
        pending.add(contact, event)
    assert pending.take(10) == [[("a1", "L1"), ("a2", "L1")], [("b1", "L1")]]
    assert pending.take(10) == [[("a3", "L2")]]


def test_batches_share_a_group_stay_within_the_limits_and_never_repeat_a_key(mailjet: CompiledPreset) -> None:
    batch = mailjet.step("contact").batch
    assert batch is not None and batch.max_items == 5000

    def item(group: str, key: str, size: int = 100) -> BatchItem:
        return BatchItem({}, group, group, key, size)

    items = [item("addforce", "a"), item("unsub", "b"), item("addforce", "c"), item("addforce", "a")]
    assert chunks(batch, items) == [[0, 2], [1], [3]]
    small = type(batch)(**{**batch.__dict__, "max_items": 2, "max_bytes": 250})
    assert chunks(small, [item("x", str(n)) for n in range(5)]) == [[0, 1], [2, 3], [4]]
    assert chunks(small, [item("x", "a", 200), item("x", "b", 200)]) == [[0], [1]]


def test_coalescing_merges_fields_in_order_later_values_win_left_out_ones_stay(mailjet: CompiledPreset) -> None:
    settings = mailjet.resolve_settings(settings_of(mailjet), environ={})
    first = decide(mailjet, {"type": "identify", "traits": {"email": "a@example.com", "plan": "pro",
                              "first_name": "Ada"}, "context": {"consent": {"canonical": {"marketing": False}}}},
                   settings)  # fmt: skip
    second = decide(mailjet, {"type": "identify", "traits": {"email": "a@example.com", "plan": "team"}}, settings)
    merged = coalesce([first, second]).context["fields"]
    assert merged["properties"] == {"first_name": "Ada", "plan": "team"}
    assert merged["action"] == "unsub"  # the later event's consent is unknown: the earlier decision stands


def test_render_batch_pins_the_bulk_requests_a_run_sends(mailjet: CompiledPreset) -> None:
    settings = mailjet.resolve_settings(settings_of(mailjet), environ={})
    events = [
        {"type": "identify", "traits": {"email": f"u{n}@example.com"}, "context": {"consent": {"canonical": {
            "marketing": n % 2 == 0}}}} for n in range(5)
    ] + [{"type": "page"}]  # fmt: skip
    batched = render_batch(mailjet, events, settings, now=0).to_dict()
    assert [e["decision"] for e in batched["events"]] == ["send"] * 5 + ["drop"]
    assert [(r["events"], r["body"]["Action"]) for r in batched["requests"]] == [
        ([0, 2, 4], "addforce"),
        ([1, 3], "unsub"),
    ]
    assert all(r["url"].endswith("/contactslist/10001/managemanycontacts") for r in batched["requests"])


# -- whole runs against the fakes ------------------------------------------------------------------

BATCHED = ["mailjet", "mailgun", "sendgrid", "brevo", "klaviyo", "mailchimp", "customerio", "facebook_capi"]


#: Mailchimp's member events have no bulk endpoint: they still go one per event.
FEWER_REQUESTS = {"mailchimp": 2}


def stream(count: int = 600, contacts: int = 60) -> list[dict[str, Any]]:
    return list(generate(count, contacts=contacts, seed=7))


@pytest.mark.parametrize("name", BATCHED)
def test_batched_delivery_leaves_the_same_final_state_as_one_request_per_event(
    name: str, presets: dict[str, CompiledPreset], tmp_path: Path
) -> None:
    preset = presets[name]
    events = stream()
    results = {}
    for label, batch, concurrency in [("unbatched", False, 1), ("batched", True, 1), ("batched4", True, 4)]:
        with FakeServer(ready_fake(preset, settings_of(preset))) as server:
            stats = deliver(preset, server, events, tmp_path / label, batch=batch, concurrency=concurrency)
            results[label] = (stats, final_state(server))
    unbatched, batched = results["unbatched"][0], results["batched"][0]
    assert results["batched"][1] == results["unbatched"][1] == results["batched4"][1]
    assert len(json.dumps(results["unbatched"][1], default=str)) > 5000  # a state worth comparing
    for label in results:
        stats = results[label][0]
        assert (stats.failed, stats.parked, stats.unfinished) == (0, 0, 0), stats.failures
        assert (stats.delivered, stats.dropped) == (unbatched.delivered, unbatched.dropped)
    fewer = FEWER_REQUESTS.get(name, 5)  # at least; bench/batching.py measures on 10,000 events
    assert batched.requests * fewer <= unbatched.requests, (batched.requests, unbatched.requests)
    assert sum(numbers["batches"] for numbers in batched.batches.values()) >= 1


def mailjet_run(tmp_path: Path, server: FakeServer, events: list[Any], **options: Any) -> Any:
    return deliver(load_preset("mailjet"), server, events, tmp_path, batch=True, **options)


def identify(email: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "traits": {"email": email, **traits}}


def signup(email: str) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "properties": {"method": "google"},
            "context": {"traits": {"email": email}}}  # fmt: skip


@pytest.fixture()
def mailjet_fake(mailjet: CompiledPreset) -> Any:
    with FakeServer(ready_fake(mailjet, settings_of(mailjet))) as server:
        yield server


def test_one_bad_item_fails_alone_before_any_batch_is_built(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = [identify("a@example.com"), identify("bad@example.com", plan={"tier": "gold"}), identify("c@example.com")]
    stats = mailjet_run(tmp_path, mailjet_fake, events)
    assert (stats.delivered, stats.failed) == (2, 1)
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 2 and "fails its item schema" in failed["error"] and "Properties/plan" in failed["error"]
    assert "bad@example.com" not in json.dumps(mailjet_fake.requests())
    assert [r["status"] for r in posts(mailjet_fake, "managemanycontacts")] == [201]


def test_a_refused_item_fails_its_event_with_the_vendors_words_and_parks_the_contact(tmp_path: Path) -> None:
    preset = load_preset("mailjet")
    vendor = ready_fake(preset, settings_of(preset), undefined={"signup_method"})
    with FakeServer(vendor) as server:
        stats = mailjet_run(tmp_path, server, [identify("a@example.com"), signup("b@example.com"), identify("c@x.org")])
        assert (stats.delivered, stats.failed) == (2, 1)
        [failed] = dead_letter(tmp_path)
        assert failed["line"] == 2 and "signup_method: Property not defined" in failed["error"]
        assert "relay check mailjet --fix" in failed["hint"]
        assert {row[0] for row in server.vendor.table()[2]} == {"a@example.com", "c@x.org"}
        assert len(server.requests(contains="JSONError")) == 1
        later = mailjet_run(tmp_path, server, [identify("d@example.com"), identify("b@example.com")])
        assert (later.delivered, later.parked) == (1, 1)
        parked = dead_letter(tmp_path)[-1]
        assert parked["outcome"] == "parked" and "behind line 2" in parked["error"]


def test_a_contacts_events_merged_into_one_item_share_its_outcome(tmp_path: Path) -> None:
    preset = load_preset("mailjet")
    vendor = ready_fake(preset, settings_of(preset), undefined={"signup_method"})
    events = [signup("b@example.com"), identify("a@example.com"), identify("b@example.com", plan="pro")]
    with FakeServer(vendor) as server:
        stats = mailjet_run(tmp_path, server, events)
    assert (stats.delivered, stats.failed) == (1, 2)
    assert [(d["line"], d["outcome"]) for d in dead_letter(tmp_path)] == [(1, "failed"), (3, "failed")]


def test_a_whole_batch_429_is_retried_and_everything_is_delivered(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    mailjet_fake.inject(Fault("status", status=429, times=3, path_contains="managemanycontacts"))
    stats = mailjet_run(tmp_path, mailjet_fake, [identify(f"u{n}@example.com") for n in range(20)])
    assert (stats.delivered, stats.failed, stats.throttled) == (20, 0, 3)
    assert [r["status"] for r in posts(mailjet_fake, "managemanycontacts")] == [429, 429, 429, 201]
    assert len(mailjet_fake.vendor.table()[2]) == 20


def test_a_whole_batch_4xx_is_split_down_to_the_offending_event(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    mailjet_fake.inject(Fault("status", status=400, times=99, path_contains="managemanycontacts",
                              body_contains="u5@example.com"))  # fmt: skip
    stats = mailjet_run(tmp_path, mailjet_fake, [identify(f"u{n}@example.com") for n in range(8)])
    assert (stats.delivered, stats.failed) == (7, 1)
    [failed] = dead_letter(tmp_path)
    assert failed["line"] == 6 and failed["status"] == 400 and failed["hint"]
    sizes = [len(json.loads(r["body"])["Contacts"]) for r in posts(mailjet_fake, "managemanycontacts")]
    assert sizes == [8, 4, 4, 2, 1, 1, 2]  # halves (depth first), down to the one that fails alone


def test_a_stop_answer_fails_the_batch_and_parks_everything_after_it(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    wrong = {**settings_of(load_preset("mailjet")), "secret_key": "sec-wrong"}
    events = [identify(f"u{n}@example.com") for n in range(6)]
    stats = mailjet_run(tmp_path, mailjet_fake, events, settings=wrong)
    assert stats.stopped and "refused the credentials" in stats.stopped
    assert stats.failed + stats.parked == 6 and stats.delivered == 0
    assert len(posts(mailjet_fake, "managemanycontacts")) == 1


def test_a_dry_run_reports_batch_counts_and_sizes(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = [identify(f"u{n}@example.com") for n in range(12)] + [{"type": "page"}]
    stats = mailjet_run(tmp_path, mailjet_fake, events, dry_run=True)
    assert (stats.rendered, stats.dropped, stats.requests) == (12, 1, 0)
    assert stats.batches["contact"]["batches"] == 1 and stats.batches["contact"]["items"] == 12
    assert stats.batches["contact"]["max_bytes"] > 12 * 20
    assert mailjet_fake.requests() == []


def _send_command(tmp_path: Path, server: FakeServer, events: Path) -> list[str]:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(settings_of(load_preset("mailjet"))))
    redirects = [f"--redirect={source}={target}" for source, target in redirects_for(load_preset("mailjet"),
                                                                                       server.url).items()]  # fmt: skip
    return ["send", "mailjet", str(events), "--settings", str(settings), "--no-progress", *redirects,
            "--journal", str(tmp_path / "journal.sqlite"), "--dead-letter", str(tmp_path / "dead.ndjson")]  # fmt: skip


@pytest.mark.parametrize("refused", [False, True], ids=["completed", "one_refused"])
def test_a_crash_while_a_job_runs_resumes_by_polling_it_never_by_sending_again(
    tmp_path: Path, mailjet: CompiledPreset, refused: bool
) -> None:
    vendor = ready_fake(mailjet, settings_of(mailjet), polls_to_finish=10**9,
                        undefined={"signup_method"} if refused else ())  # fmt: skip
    assert isinstance(vendor, MailjetFake)
    events = tmp_path / "events.ndjson"
    events.write_bytes(ndjson([identify(f"u{n}@example.com", first_name=f"U{n}") for n in range(30)]
                              + [signup("late@example.com")]))  # fmt: skip
    with FakeServer(vendor) as server:
        args = _send_command(tmp_path, server, events)
        crashed = subprocess.Popen([sys.executable, "-m", "relay", *args], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while open_jobs(tmp_path / "journal.sqlite") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open_jobs(tmp_path / "journal.sqlite") == 1, "the job must be running when relay dies"
        finally:
            crashed.send_signal(signal.SIGKILL)
            crashed.wait()
        assert vendor.table()[2] == [] and vendor.bulk.submitted == [(35800, 31)]  # sent, not yet applied
        vendor.bulk.finish_all()  # Mailjet's workers go on while relay is down
        result = CliRunner().invoke(main, args)
        assert len(posts(server, "managemanycontacts")) == 1  # polled, never sent again
        assert len(server.requests("GET", "managemanycontacts/35800")) >= 1
    assert result.exit_code == (1 if refused else 0), result.output
    assert open_jobs(tmp_path / "journal.sqlite") == 0
    assert len(vendor.table()[2]) == (30 if refused else 31)
    if refused:
        [failed] = dead_letter(tmp_path)
        assert failed["line"] == 31 and "Property not defined" in failed["error"] and "--fix" in failed["hint"]


def test_relay_render_shows_how_an_event_is_batched() -> None:
    example = ["--event", str(ROOT / "examples" / "mailjet-signed-up.json")]
    settings = ["--settings", str(ROOT / "examples" / "mailjet.settings.yaml")]
    result = CliRunner().invoke(main, ["render", "mailjet", *example, *settings, "--no-trace"])
    assert result.exit_code == 0, result.output
    assert "/managecontact " in result.output and "BATCHED  (batching is on" in result.output
    assert "/managemanycontacts " in result.output and "until Completed, Error" in result.output
    as_json = CliRunner().invoke(main, ["render", "mailjet", *example, *settings, "--format", "json"])
    [bulk] = json.loads(as_json.output)["batched"]
    assert bulk["events"] == [0] and bulk["body"]["Contacts"][0]["Email"] == "jane.doe@example.com"


def test_send_dry_run_prints_the_bulk_requests_it_would_send(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_bytes(ndjson([identify(f"u{n}@example.com") for n in range(7)]))
    result = CliRunner().invoke(main, [*_send_command(tmp_path, mailjet_fake, events), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "bulk requests built (contact)" in result.output and "7 avg, 7 max" in result.output


def test_batching_off_in_the_settings_sends_one_request_per_event(tmp_path: Path, mailjet_fake: FakeServer) -> None:
    events = tmp_path / "events.ndjson"
    events.write_bytes(ndjson([identify(f"u{n}@example.com") for n in range(4)]))
    args = _send_command(tmp_path, mailjet_fake, events)
    settings = Path(args[args.index("--settings") + 1])
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "relay": {"batch": False}}))
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(posts(mailjet_fake, "/managecontact")) == 4 and not posts(mailjet_fake, "managemanycontacts")


def test_the_collector_batches_too(tmp_path: Path, mailjet: CompiledPreset) -> None:
    """`relay serve` feeds each destination through the same runner: its deliveries are batched."""
    import requests

    from tests.service_helpers import WRITE_KEY, RelayProcess, env, wait_until, write_config

    events = stream(120, 15)
    expected = ready_fake(mailjet, settings_of(mailjet))
    with FakeServer(expected) as reference:
        deliver(mailjet, reference, events, tmp_path / "reference", batch=False)
    vendor = ready_fake(mailjet, settings_of(mailjet))
    with FakeServer(vendor) as server:
        destination = {"name": "mailjet", "preset": "mailjet", "settings": settings_of(mailjet), "concurrency": 2,
                       "redirect": redirects_for(mailjet, server.url)}  # fmt: skip
        with RelayProcess("serve", "--config", str(write_config(tmp_path, [destination])), environ=env()) as relay:
            answer = requests.post(f"{relay.url}/v1/batch", json={"batch": events}, auth=(WRITE_KEY, ""), timeout=10)
            assert answer.status_code == 200, answer.text

            def finished() -> bool:
                text = requests.get(f"{relay.url}/metrics", timeout=5).text
                return 'relay_queue_depth{destination="mailjet"} 0.0' in text

            wait_until(finished, what="the destination to finish")
        assert posts(server, "managemanycontacts") and not posts(server, "/managecontact")
        assert len(posts(server, "managemanycontacts")) * 10 <= len(events)
        assert final_state(server) == final_state(reference)


@pytest.mark.parametrize("pause", [False, True], ids=["parks", "pauses"])
def test_a_stop_answer_in_a_wave_sends_nothing_more(tmp_path: Path, mailgun: CompiledPreset, pause: bool) -> None:
    """Relay sends nothing after a stop: the wave's other reads are not sent. Without pause the rest is
    parked behind the failure; a service (pause) leaves it all unrecorded, to deliver once fixed."""
    from relay import MockTransport, Response
    from relay.delivery.deadletter import DeadLetter
    from relay.delivery.deliver import Deliverer
    from relay.delivery.journal import Journal
    from relay.delivery.runner import RunControl, run_stream

    transport = MockTransport(lambda _request: Response(401, {}, b"Forbidden"))
    settings = mailgun.resolve_settings(settings_of(mailgun), environ={})
    deliverer = Deliverer(mailgun, settings, transport, sleep=lambda _s: None)
    lines = [(n, json.dumps(identify(f"u{n}@example.com")).encode()) for n in range(1, 6)]
    journal, dead = Journal(tmp_path / "j.sqlite"), DeadLetter(tmp_path / "dead.ndjson")
    try:
        stats = run_stream(deliverer, lines, journal=journal, dead_letter=dead, control=RunControl(),
                           pause_on_stop=pause)  # fmt: skip
    finally:
        journal.close()
        dead.close()
    assert len(transport.sent) == 1 and stats.stopped and "refused the key" in stats.stopped
    if pause:
        assert (stats.failed, stats.parked, stats.unfinished) == (0, 0, 5)
    else:
        assert (stats.failed, stats.parked) == (1, 4)
        assert all("the destination stopped at line 1" in d["error"] for d in dead_letter(tmp_path)[1:])


def test_a_bulk_body_whose_items_read_a_secret_is_redacted_in_reviews(tmp_path: Path) -> None:
    text = (ROOT / "presets" / "mailjet" / "preset.yaml").read_text().replace("../../schemas", str(ROOT / "schemas"))
    body, item = text.split("    batch:\n", 1)
    item = item.replace('Name: "{{ fields.name }}"', 'Name: "{{ settings.secret_key }}"', 1)
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "preset.yaml").write_text(body + "    batch:\n" + item)
    preset = load_preset(tmp_path / "leaky")
    settings = preset.resolve_settings(settings_of(load_preset("mailjet")), environ={})
    shown = json.dumps(render_batch(preset, [identify("a@example.com")], settings, now=0).to_dict())
    assert settings.values["secret_key"] not in shown and '"Contacts": "<redacted>"' in shown

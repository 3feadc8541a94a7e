"""Every bundled preset delivers to `relay fake <preset>`: each sending golden's event, sent by
relay's own Deliverer through the redirects `relay fake` prints, reaches the fake exactly as
the golden pins it (method, path, query, headers, body) and ends delivered."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
from click.testing import CliRunner

import relay
from relay import CompiledPreset
from relay.authoring.golden import GoldenCase, discover_cases
from relay.cli import main
from relay.delivery.checks import check_preset
from relay.delivery.deliver import Deliverer
from relay.delivery.transport import HTTPTransport, RedirectTransport
from relay.fakes import BulkVendor, FakeServer, MailchimpFake, RecordingFake, fake_for, redirects_for
from relay.runtime.decision import REDACTED, redact
from tests.delivery_helpers import Sleeps
from tests.paths import ROOT

PRESETS = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))
CASES = [
    case
    for name in PRESETS
    for case in discover_cases(name)
    if case.has_expectation and case.expected.get("decision") == "send"
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeServer]]:
    """One fake server per preset; each case gets a fresh vendor behind it."""
    running: dict[str, FakeServer] = {}
    yield running
    for server in running.values():
        server.stop()


def test_every_bundled_preset_has_sending_goldens() -> None:
    assert {case.preset for case in CASES} == set(PRESETS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_event_reaches_the_fake_as_pinned(
    case: GoldenCase, presets: dict[str, CompiledPreset], servers: dict[str, FakeServer]
) -> None:
    preset = presets[case.preset]
    settings = preset.resolve_settings(case.settings, environ={})
    vendor = fake_for(preset, settings)
    if isinstance(vendor, BulkVendor):
        vendor.clock = lambda: case.now  # e.g. Meta refuses events older than 7 days by its clock
    if case.preset not in servers:
        servers[case.preset] = FakeServer(vendor).start()
    server = servers[case.preset]
    server.vendor = vendor
    redirects = redirects_for(preset, server.url)
    check_preset(preset, settings, fix=True, redirects=redirects)  # e.g. creates Mailjet's properties
    _seed_reads(preset, settings, case, vendor)
    server.log.clear()

    transport = RedirectTransport(HTTPTransport(), redirects)
    deliverer = Deliverer(preset, settings, transport, sleep=Sleeps(), rng=random.Random(1), clock=lambda: case.now)
    outcome = deliverer.deliver(case.event)
    assert outcome.status == "delivered", outcome

    received = [entry for entry in server.log if not entry["path"].startswith("/_fake/")]
    expected = case.expected["requests"]
    assert [(r["method"], r["path"]) for r in received] == [(e["method"], _path(e["url"])) for e in expected]
    for got, want in zip(received, expected, strict=True):
        query = dict(parse_qsl(urlsplit(want["url"]).query))
        assert redact(got["query"], settings.secrets) == query
        for name, value in want["headers"].items():
            if REDACTED in value:
                assert got["headers"].get(name.lower()), f"{name} was not sent"
            else:
                assert got["headers"].get(name.lower()) == value, name
        assert redact(_body(got), settings.secrets) == want["body"]


def _seed_reads(preset: CompiledPreset, settings: Any, case: GoldenCase, vendor: Any) -> None:
    """What the golden says a `read` finds, the fake holds (e.g. an existing member)."""
    decision = relay.render(preset, case.event, settings, answers=case.answers, now=case.now)
    for request in decision.requests:
        step = preset.step(request.step)
        answer = case.answers.get(step.bind) if step.bind else None
        if step.role == "read" and answer is not None:
            vendor.seed(request.method, urlsplit(request.url).path, answer)


def _path(url: str) -> str:
    return unquote(urlsplit(url).path)


def _body(entry: dict[str, Any]) -> Any:
    text = entry["body"]
    if not text:
        return None
    if entry["headers"].get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(text, keep_blank_values=True))
    return json.loads(text)


# -- the recording fake answers like the vendor, so the preset's response rules run ----------

WRONG_CREDENTIALS = [
    ("mailchimp", {"api_key": "ffffffffffffffffffffffffffffffff-us21"}, "stop", "Your API key may be invalid"),
    ("customerio", {"api_key": "cio-wrong"}, "stop", "Unauthorized request"),
    ("facebook_capi", {"access_token": "EAAB-wrong"}, "stop", "Invalid OAuth access token"),
    ("sendgrid", {"api_key": "SG.wrong"}, "stop", "authorization required"),
    ("brevo", {"api_key": "xkeysib-wrong"}, "stop", "Key not found"),
    ("klaviyo", {"api_key": "pk_wrong"}, "stop", "Missing or invalid private key."),
]


@pytest.mark.parametrize(
    ("name", "wrong", "outcome", "vendor_words"), WRONG_CREDENTIALS, ids=[w[0] for w in WRONG_CREDENTIALS]
)
def test_a_wrong_credential_gets_the_vendors_answer_and_the_presets_hint(
    presets: dict[str, CompiledPreset], name: str, wrong: dict[str, str], outcome: str, vendor_words: str
) -> None:
    preset = presets[name]
    case = next(c for c in CASES if c.preset == name)
    right = preset.resolve_settings(case.settings, environ={})
    with FakeServer(fake_for(preset, right)) as server:
        sent = preset.resolve_settings({**case.settings, **wrong}, environ={})
        transport = RedirectTransport(HTTPTransport(), redirects_for(preset, server.url))
        result = Deliverer(
            preset, sent, transport, sleep=Sleeps(), rng=random.Random(1), clock=lambda: case.now
        ).deliver(case.event)
    assert result.status == "failed" and result.stop is (outcome == "stop"), result
    assert vendor_words in (result.reason or ""), result.reason  # the preset's error_message found the vendor's words
    assert result.hint, "the preset's hint for this answer"


def test_unhashed_customer_information_is_refused_in_the_vendors_words(presets: dict[str, CompiledPreset]) -> None:
    preset = presets["facebook_capi"]
    case = next(c for c in CASES if c.preset == "facebook_capi")
    settings = preset.resolve_settings(case.settings, environ={})
    with FakeServer(fake_for(preset, settings)) as server:
        plain = [
            {
                "event_name": "Purchase",
                "event_time": int(time.time()),
                "action_source": "website",
                "event_source_url": "https://shop.example.com/",
                "user_data": {"em": ["a@b.c"], "client_user_agent": "Mozilla/5.0"},
            }
        ]
        answer = requests.post(
            f"{server.url}/v21.0/123456789012345/events",
            data={"data": json.dumps(plain), "access_token": case.settings["access_token"]},
            timeout=5,
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert "data/0/user_data/em/0" in answer.json()["error"]["error_user_msg"]  # unhashed email refused


def test_templated_hosts_route_to_the_fake(presets: dict[str, CompiledPreset]) -> None:
    redirects = redirects_for(presets["mailchimp"], "http://127.0.0.1:9")
    assert redirects == {"https://*.api.mailchimp.com": "http://127.0.0.1:9"}
    transport = RedirectTransport(HTTPTransport(), redirects)
    assert transport.target("https://us21.api.mailchimp.com/3.0/ping") == "http://127.0.0.1:9/3.0/ping"
    assert transport.target("https://mailchimp.com/3.0/ping") == "https://mailchimp.com/3.0/ping"
    assert isinstance(fake_for(presets["mailchimp"]), MailchimpFake)
    assert isinstance(fake_for(presets["webhook"]), RecordingFake)


# -- `relay fake PRESET` on the command line --------------------------------------------------


def test_relay_fake_serves_a_preset_and_relay_send_delivers_to_it(tmp_path: Path) -> None:
    settings = tmp_path / "mailchimp.settings.yaml"
    settings.write_text("api_key: 0123456789abcdef0123456789abcdef-us21\nlist_id: a1b2c3d4e5\n")
    command = [sys.executable, "-m", "relay", "fake", "mailchimp", "--settings", str(settings)]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as fake:  # closes the pipe, waits
        try:
            _send_through(fake, tmp_path, settings)
        finally:
            fake.terminate()


def _send_through(fake: subprocess.Popen[str], tmp_path: Path, settings: Path) -> None:
    assert fake.stderr is not None
    banner = fake.stderr.readline()
    url = banner.split(" listening on ")[1].split()[0]
    advice = fake.stderr.readline()
    assert f"--redirect 'https://*.api.mailchimp.com={url}'" in advice
    cases = {c.name: c for c in discover_cases("mailchimp")}
    events = tmp_path / "events.ndjson"
    events.write_text(
        "".join(json.dumps(cases[n].event) + "\n" for n in ("identify_consent_granted", "order_completed"))
    )
    result = CliRunner().invoke(
        main,
        [
            "send", "mailchimp", str(events), "--settings", str(settings), "--no-progress",
            "--redirect", f"https://*.api.mailchimp.com={url}",
            "--journal", str(tmp_path / "j.sqlite"), "--dead-letter", str(tmp_path / "dead.ndjson"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = requests.get(f"{url}/_fake/log", timeout=5).json()
    # Batched (the default): the members in batch subscribe calls, then the member event as an
    # operation of a Batch Operations batch, polled until it finished.
    members = [e for e in log if e["path"] == "/3.0/lists/a1b2c3d4e5"]
    batches = [e for e in log if e["path"] == "/3.0/batches"]
    polls = [e for e in log if e["path"].startswith("/3.0/batches/")]
    assert members and all((e["method"], e["status"]) == ("POST", 200) for e in members)
    assert [(e["method"], e["status"]) for e in batches] == [("POST", 200)]
    assert polls and all(e["method"] == "GET" for e in polls)
    assert len(log) == len(members) + len(batches) + len(polls)
    member = hashlib.md5(b"jane@example.com").hexdigest()  # the golden order_completed's contact
    key = settings.read_text().split()[1]
    events_url = f"{url}/3.0/lists/a1b2c3d4e5/members/{member}/events"
    answer = requests.get(events_url, auth=("relay", key), timeout=5).json()
    assert [e["name"] for e in answer["events"]] == ["order_completed"]  # the operation ran


def test_a_specialised_fake_without_settings_takes_the_example_settings(tmp_path: Path) -> None:
    """`relay fake mailgun` alone, then the command it prints, delivers: no 401 from a key
    the user never saw."""
    command = [sys.executable, "-m", "relay", "fake", "mailgun"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as fake:
        try:
            assert fake.stderr is not None
            url = fake.stderr.readline().split(" listening on ")[1].split()[0]
            advice = fake.stderr.readline()
            settings = advice.split("--settings ")[1].split()[0]
            assert Path(settings).name == "mailgun.settings.yaml" and Path(settings).is_file()
            events = tmp_path / "events.ndjson"
            event = json.loads((Path(settings).parent / "mailgun-identify.json").read_text())
            events.write_text(json.dumps(event) + "\n")
            result = CliRunner().invoke(
                main,
                [
                    "send", "mailgun", str(events), "--settings", settings, "--no-progress",
                    "--redirect", f"https://api.mailgun.net={url}",
                    "--journal", str(tmp_path / "j.sqlite"), "--dead-letter", str(tmp_path / "dead.ndjson"),
                ],
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            log = requests.get(f"{url}/_fake/log", timeout=5).json()
            assert [e["status"] for e in log] == [404, 200]  # the member read (none yet), the upsert
        finally:
            fake.terminate()


def test_a_recording_fake_answers_as_its_presets_fake_yaml_says(presets: dict[str, CompiledPreset]) -> None:
    """webhook has no vendor fake: the recording fake takes the settings' credentials, checks
    bodies against the request schema, and answers in fake.yaml's words."""
    preset = presets["webhook"]
    case = next(c for c in CASES if c.preset == "webhook")
    settings = preset.resolve_settings({**case.settings, "bearer_token": "tok-right"}, environ={})
    with FakeServer(fake_for(preset, settings)) as server:
        url = redirects_for(preset, server.url)
        target = RedirectTransport(HTTPTransport(), url).target(settings.values["url"])
        wrong = requests.post(target, json={}, headers={"Authorization": "Bearer tok-wrong"}, timeout=5)
        invalid = requests.post(
            target, json={"not": "an event"}, headers={"Authorization": "Bearer tok-right"}, timeout=5
        )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "unauthorized"})
    assert invalid.status_code == 400 and invalid.json()["error"]  # the schema's problems, in fake.yaml's shape

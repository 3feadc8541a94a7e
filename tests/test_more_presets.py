"""The recording fake in detail: signatures over the exact bytes, schema violations, path
patterns and preflight checks (test_fake_delivery.py sends every golden to every preset's fake)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from typing import Any

import pytest

from relay import CompiledPreset
from relay.delivery.deliver import Deliverer
from relay.delivery.transport import HTTPTransport, RedirectTransport
from relay.fakes import FakeServer, RecordingFake, Route, redirects_for
from relay.fakes.recording import origin_pattern, path_pattern
from tests.delivery_helpers import Sleeps


def deliver(preset: CompiledPreset, settings: dict[str, Any], event: Any, fake: RecordingFake) -> Any:
    with FakeServer(fake) as server:
        if preset.name == "webhook":
            settings = {**settings, "url": f"{server.url}/hooks/relay"}
        resolved = preset.resolve_settings(settings, environ={})
        transport = RedirectTransport(HTTPTransport(), redirects_for(preset, server.url))
        deliverer = Deliverer(
            preset, resolved, transport, sleep=Sleeps(), rng=random.Random(1), clock=lambda: 1_700_000_000.0
        )
        return deliverer.deliver(event)


def test_webhook_signature_verifies_over_the_exact_bytes(webhook: CompiledPreset) -> None:
    secret = "whsec-verify"
    fake = RecordingFake.for_preset(webhook)
    event = {"type": "track", "event": "Zoë signed", "anonymousId": "a", "properties": {"n": 1.5}}
    outcome = deliver(webhook, {"url": "x", "signing_secret": secret}, event, fake)
    assert outcome.status == "delivered"
    received = fake.received[0]
    timestamp = received["headers"]["x-timestamp"]
    assert timestamp == "1700000000000"
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + received["raw"], hashlib.sha256).hexdigest()
    assert received["headers"]["x-signature"] == f"sha256={expected}"
    assert json.loads(received["raw"])["event"] == "Zoë signed"


def test_webhook_without_secret_or_auth_sends_neither(webhook: CompiledPreset) -> None:
    fake = RecordingFake.for_preset(webhook)
    assert deliver(webhook, {"url": "x"}, {"type": "page", "anonymousId": "a"}, fake).status == "delivered"
    headers = fake.received[0]["headers"]
    assert not {"authorization", "x-signature", "x-timestamp"} & set(headers)


def test_brevo_204_on_update_is_success(brevo: CompiledPreset) -> None:
    fake = RecordingFake.for_preset(brevo, {"contact": (204, None)}, ("api-key", "k"))
    event = {"type": "identify", "traits": {"email": "a@example.com"}}
    assert deliver(brevo, {"api_key": "k", "list_id": 3}, event, fake).status == "delivered"


def test_schema_violations_are_rejected_by_the_fake(sendgrid: CompiledPreset) -> None:
    fake = RecordingFake.for_preset(sendgrid)
    with FakeServer(fake) as server:
        import requests

        answer = requests.put(f"{server.url}/v3/marketing/contacts", json={"contacts": [{"mail": "x"}]}, timeout=5)
    assert answer.status_code == 400
    assert any("'email' is a required property" in e["message"] for e in answer.json()["errors"])


@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("{{ settings.base_url }}/v3/marketing/contacts", "/v3/marketing/contacts", True),
        (
            "{{ settings.base_url }}/v3/asm/groups/{{ settings.unsubscribe_group_id }}/suppressions",
            "/v3/asm/groups/4242/suppressions",
            True,
        ),
        (
            "{{ settings.base_url }}/v3/asm/groups/{{ settings.unsubscribe_group_id }}/suppressions",
            "/v3/asm/groups/4/2/suppressions",
            False,
        ),
        ("https://api.brevo.com/v3/contacts", "/v3/contacts", True),
        ("{{ settings.url }}", "/hooks/relay", True),
        ("https://{{ fields.dc }}.api.mailchimp.com/3.0/lists/{{ settings.list_id }}", "/3.0/lists/a1b2", True),
        ("https://{{ fields.dc }}.api.mailchimp.com/3.0/lists/{{ settings.list_id }}", "/3.0/lists/a/b", False),
        ("https://api.example.com/v1/{{ x }}?key={{ settings.key }}", "/v1/thing", True),
        (
            "https://graph.facebook.com/{{ settings.api_version }}/{{ settings.pixel_id }}/events",
            "/v21.0/1/events",
            True,
        ),
    ],
)
def test_path_pattern(template: str, path: str, matches: bool) -> None:
    assert bool(path_pattern(template).fullmatch(path)) is matches


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        ("https://{{ fields.dc }}.api.mailchimp.com/3.0/ping", "https://*.api.mailchimp.com"),
        ("https://api.brevo.com/v3/contacts", "https://api.brevo.com"),
        ("{{ settings.base_url }}/v3/lists", "*"),
        ("https://{{ a }}-{{ b }}.example.com:8443/x", "https://*-*.example.com:8443"),
    ],
)
def test_origin_pattern(template: str, origin: str) -> None:
    assert origin_pattern(template) == origin


@pytest.mark.parametrize(
    ("source", "url", "target"),
    [
        ("https://*.api.mailchimp.com", "https://us21.api.mailchimp.com/3.0/x?a=1", "http://f/3.0/x?a=1"),
        ("https://*.api.mailchimp.com", "https://us21.api.mailchimp.com.evil.test/3.0/x", None),
        ("*", "https://anything.example/v1/x", "http://f/v1/x"),
        ("https://api.mailgun.net", "https://api.mailgun.net/v3/lists", "http://f/v3/lists"),
        ("https://api.mailgun.net/", "https://api.eu.mailgun.net/v3/lists", None),
    ],
)
def test_redirect_patterns(source: str, url: str, target: str | None) -> None:
    transport = RedirectTransport(HTTPTransport(), {source: "http://f"})
    assert transport.target(url) == (target or url)


CHECK_CASES = [
    (
        "sendgrid",
        {"api_key": "SG.k", "list_id": "L1", "unsubscribe_group_id": 1},
        [
            Route(
                "scopes",
                path_pattern("/v3/scopes"),
                200,
                {"scopes": ["marketing.contacts.create", "asm.groups.suppressions.create"]},
            ),
            Route("list", path_pattern("/v3/marketing/lists/L1"), 200, {"id": "L1"}),
        ],
        True,
        [],
    ),
    (
        "sendgrid",
        {"api_key": "SG.k", "list_id": "L1", "unsubscribe_group_id": 1},
        [
            Route("scopes", path_pattern("/v3/scopes"), 200, {"scopes": ["mail.send"]}),
            Route("list", path_pattern("/v3/marketing/lists/L1"), 404, {"errors": []}),
        ],
        False,
        ["needs the scopes", "No Marketing Campaigns list has the ID L1"],
    ),
    (
        "brevo",
        {"api_key": "xkeysib-check", "list_id": 9},
        [
            Route("account", path_pattern("/v3/account"), 401, {"message": "Key not found"}),
            Route("list", path_pattern("/v3/contacts/lists/9"), 200, {"id": 9}),
        ],
        False,
        ["Brevo refused the key"],
    ),
    (
        "klaviyo",
        {"api_key": "pk_x", "list_id": "Y6"},
        [
            Route("accounts", path_pattern("/api/accounts"), 200, {"data": []}),
            Route("list", path_pattern("/api/lists/Y6"), 200, {"data": {}}),
        ],
        True,
        [],
    ),
]


@pytest.mark.parametrize(
    ("name", "settings", "routes", "ok", "phrases"),
    CHECK_CASES,
    ids=["sendgrid-ok", "sendgrid-scopes-and-list", "brevo-bad-key", "klaviyo-ok"],
)
def test_preflight_checks(
    presets: dict[str, CompiledPreset],
    name: str,
    settings: dict[str, Any],
    routes: list[Route],
    ok: bool,
    phrases: list[str],
) -> None:
    from relay.delivery.checks import run_checks

    preset = presets[name]
    with FakeServer(RecordingFake(routes)) as server:
        transport = RedirectTransport(HTTPTransport(), redirects_for(preset, server.url))
        results = run_checks(preset, preset.resolve_settings(settings, environ={}), transport)
    assert all(r.ok for r in results) is ok
    problems = " ".join(p for r in results for p in r.problems)
    for phrase in phrases:
        assert phrase in problems, problems

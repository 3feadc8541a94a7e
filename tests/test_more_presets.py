"""The YAML-only presets (sendgrid, brevo, klaviyo, webhook) deliver to a recording fake
that checks every request against the preset's own request schemas."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from typing import Any

import pytest

from relay import CompiledPreset
from relay.authoring.golden import GoldenCase, discover_cases
from relay.delivery.deliver import Deliverer
from relay.delivery.transport import RedirectTransport, RequestsTransport
from relay.fakes import FakeServer, RecordingFake, Route
from relay.fakes.recording import path_pattern
from tests.delivery_helpers import Sleeps

HOSTS = {
    "sendgrid": ["https://api.sendgrid.com", "https://api.eu.sendgrid.com"],
    "brevo": ["https://api.brevo.com"],
    "klaviyo": ["https://a.klaviyo.com"],
    "webhook": [],
}
ANSWERS: dict[str, dict[str, tuple[int, Any]]] = {
    "sendgrid": {
        "upsert": (202, {"job_id": "2387e363-4104-4225-8960-4a5758492351"}),
        "suppress": (201, {"recipient_emails": ["x@example.com"]}),
    },
    "brevo": {"contact": (201, {"id": 42})},
    "klaviyo": {
        "profile": (201, {"data": {"type": "profile", "id": "01GDDKASAP8TKDDA2GRZDSVP4H"}}),
        "subscribe": (202, None),
        "unsubscribe": (202, None),
    },
    "webhook": {"canonical": (200, {"ok": True}), "event_as_is": (204, None)},
}


def credential(preset: str, settings: dict[str, Any]) -> tuple[str, str] | None:
    """The header a request must carry for the fake to accept it (the webhook's vary by case)."""
    templates = {
        "sendgrid": ("Authorization", "Bearer {}"),
        "brevo": ("api-key", "{}"),
        "klaviyo": ("Authorization", "Klaviyo-API-Key {}"),
    }
    if preset not in templates:
        return None
    header, value = templates[preset]
    return header, value.format(settings["api_key"])


CASES = [
    case
    for name in HOSTS
    for case in discover_cases(name)
    if case.has_expectation and case.expected.get("decision") == "send"
]


def deliver(preset: CompiledPreset, settings: dict[str, Any], event: Any, fake: RecordingFake) -> Any:
    with FakeServer(fake) as server:
        if preset.name == "webhook":
            settings = {**settings, "url": f"{server.url}/hooks/relay"}
        resolved = preset.resolve_settings(settings, environ={})
        transport = RedirectTransport(RequestsTransport(), dict.fromkeys(HOSTS[preset.name], server.url))
        deliverer = Deliverer(
            preset, resolved, transport, sleep=Sleeps(), rng=random.Random(1), clock=lambda: 1_700_000_000.0
        )
        return deliverer.deliver(event)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_send_paths_pass_the_recording_fake(case: GoldenCase, presets: dict[str, CompiledPreset]) -> None:
    preset = presets[case.preset]
    fake = RecordingFake.for_preset(preset, ANSWERS[case.preset], credential(case.preset, case.settings))
    outcome = deliver(preset, case.settings, case.event, fake)
    assert outcome.status == "delivered", outcome
    expected_requests = case.expected["requests"]
    assert [r["route"] for r in fake.received] == [r["step"] for r in expected_requests]
    for received, expected in zip(fake.received, expected_requests, strict=True):
        assert received["method"] == expected["method"]
        assert received["body"] == expected["body"]
        path = expected["url"].split("://", 1)[1].split("/", 1)[1].rsplit("?")[0]
        assert received["path"].endswith(path) or case.preset == "webhook"


def test_webhook_signature_verifies_over_the_exact_bytes(webhook: CompiledPreset) -> None:
    secret = "whsec-verify"
    fake = RecordingFake.for_preset(webhook, ANSWERS["webhook"])
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
    fake = RecordingFake.for_preset(webhook, ANSWERS["webhook"])
    assert deliver(webhook, {"url": "x"}, {"type": "page", "anonymousId": "a"}, fake).status == "delivered"
    headers = fake.received[0]["headers"]
    assert not {"authorization", "x-signature", "x-timestamp"} & set(headers)


def test_brevo_204_on_update_is_success(brevo: CompiledPreset) -> None:
    fake = RecordingFake.for_preset(brevo, {"default": (204, None)}, ("api-key", "k"))
    event = {"type": "identify", "traits": {"email": "a@example.com"}}
    assert deliver(brevo, {"api_key": "k", "list_id": 3}, event, fake).status == "delivered"


def test_schema_violations_are_rejected_by_the_fake(sendgrid: CompiledPreset) -> None:
    fake = RecordingFake.for_preset(sendgrid, ANSWERS["sendgrid"])
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
    ],
)
def test_path_pattern(template: str, path: str, matches: bool) -> None:
    assert bool(path_pattern(template).fullmatch(path)) is matches


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
        transport = RedirectTransport(RequestsTransport(), dict.fromkeys(HOSTS[name], server.url))
        results = run_checks(preset, preset.resolve_settings(settings, environ={}), transport)
    assert all(r.ok for r in results) is ok
    problems = " ".join(p for r in results for p in r.problems)
    for phrase in phrases:
        assert phrase in problems, problems

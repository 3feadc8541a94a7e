"""Several requests per event: order, `when`, bound answers, and step progress across retries.

Two test presets shaped like the vendors that needed it (tests/fixtures/steps/):
Mailchimp's "upsert the member, then post the event" and HubSpot's "upsert the
properties, and also subscribe or unsubscribe".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from click.testing import CliRunner

import relay
from relay.cli import main
from relay.fakes import FakeServer, Fault, RecordingFake
from relay.preset.wire import form_quote
from tests.delivery_helpers import Sleeps

STEPS = Path(__file__).parent / "fixtures" / "steps"
MAILCHIMP_SETTINGS = {"api_key": "mc-key-0000", "list_id": "L1"}
HUBSPOT_SETTINGS = {"token": "hs-token-0000", "subscription_id": "S1"}


def track(email: str, name: str = "Order Completed", **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "properties": properties, "context": {"traits": {"email": email}}}


def test_mailchimp_like_upserts_the_member_then_posts_the_event() -> None:
    preset = relay.load_preset(STEPS / "mailchimp_like")
    settings = preset.resolve_settings(MAILCHIMP_SETTINGS, environ={})
    decision = relay.render(preset, track(" Ada@Example.com ", revenue=12.5, paid=True), settings)
    member, event = decision.requests
    digest = hashlib.md5(b"ada@example.com").hexdigest()
    assert (member.step, member.method, event.step, event.role) == ("member", "PUT", "event", "track")
    assert member.url.endswith(f"/members/{digest}") and event.url.endswith(f"/members/{digest}/events")
    assert json.loads(event.content) == {"name": "order_completed", "properties": {"revenue": "12.5", "paid": "true"}}
    identify = relay.render(preset, {"type": "identify", "traits": {"email": "ada@example.com"}}, settings)
    assert [r.step for r in identify.requests] == ["member"]  # no event to post for an identify


@pytest.mark.parametrize(
    ("consent", "steps"),
    [(True, ["properties", "subscribe"]), (False, ["properties", "unsubscribe"]), (None, ["properties"])],
)
def test_hubspot_like_upserts_properties_and_also_changes_the_subscription(consent: Any, steps: list[str]) -> None:
    preset = relay.load_preset(STEPS / "hubspot_like")
    settings = preset.resolve_settings(HUBSPOT_SETTINGS, environ={})
    context = {} if consent is None else {"consent": {"canonical": {"marketing": consent}}}
    event = {"type": "identify", "traits": {"email": "ada@example.com", "first_name": "Ada"}, "context": context}
    decision = relay.render(preset, event, settings, trace=True)
    assert [r.step for r in decision.requests] == steps
    assert [s["step"] for s in decision.to_dict(trace=True)["trace"]["steps"]] == [
        "properties",
        "subscribe",
        "unsubscribe",
    ]


def _send(tmp_path: Path, server: FakeServer, events: list[Any], *extra: str) -> tuple[int, str]:
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "settings.json").write_text(json.dumps(MAILCHIMP_SETTINGS))
    args = [
        "send", str(STEPS / "mailchimp_like"), str(tmp_path / "events.ndjson"),
        "--settings", str(tmp_path / "settings.json"), "--no-progress",
        "--redirect", f"https://us1.api.mailchimp.test={server.url}",
        "--journal", str(tmp_path / "journal.sqlite"), "--dead-letter", str(tmp_path / "dead.ndjson"), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_a_failed_step_is_retried_alone_and_a_step_that_succeeded_is_never_sent_again(tmp_path: Path) -> None:
    preset = relay.load_preset(STEPS / "mailchimp_like")
    fake = RecordingFake.for_preset(preset)
    with FakeServer(fake) as server:
        server.inject(Fault("status", status=400, path_contains="/events"))  # the event post fails for good
        code, out = _send(tmp_path, server, [track("ada@example.com")])
        assert code == 1 and "event:" in out  # the failure names the step
        assert [r["route"] for r in fake.received] == ["member"]
        replay = [
            "replay", str(tmp_path / "dead.ndjson"), "--settings", str(tmp_path / "settings.json"), "--no-progress",
            "--redirect", f"https://us1.api.mailchimp.test={server.url}",
            "--journal", str(tmp_path / "journal.sqlite"), "--presets", str(STEPS),
        ]  # fmt: skip
        result = CliRunner().invoke(main, replay)
        assert result.exit_code == 0, result.output
    # The replay resumed at the failed step: the member upsert was sent once, the event once.
    assert [r["route"] for r in fake.received] == ["member", "event"]


def test_without_a_journal_every_step_is_sent_on_every_attempt() -> None:
    preset = relay.load_preset(STEPS / "mailchimp_like")
    fake = RecordingFake.for_preset(preset)
    with FakeServer(fake) as server:
        transport = relay.RedirectTransport(relay.HTTPTransport(), {"https://us1.api.mailchimp.test": server.url})
        settings = preset.resolve_settings(MAILCHIMP_SETTINGS, environ={})
        deliverer = relay.Deliverer(preset, settings, transport, sleep=Sleeps())
        outcome = deliverer.deliver(track("ada@example.com"))
    assert outcome.status == "delivered" and outcome.requests == 2
    assert [r.step for r in outcome.requests_built] == ["member", "event"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain-text_1.0~",
        "a b+c&d=e/f?g#h%i",
        '[{"event_name": "Purchase", "value": 12.5}]',
        "é ü ß 日本語 🙂",
        "".join(chr(code) for code in range(0x20, 0x7F)),
        "".join(chr(code) for code in range(0x80, 0x180)),
        "\t\n\r\x00\x7f",
    ],
)
def test_form_quote_writes_what_quote_plus_writes(text: str) -> None:
    assert form_quote(text) == quote_plus(text)

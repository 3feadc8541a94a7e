"""End-to-end delivery against the fake vendors: goldens' send paths, retries, hints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay import CompiledPreset
from relay.authoring.golden import GoldenCase, discover_cases
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.retry import wait_from_headers
from relay.fakes import FakeServer, Fault, MailgunFake, MailjetFake
from tests.delivery_helpers import MAILGUN_SETTINGS, MAILJET_SETTINGS, Sleeps, deliverer, fake_for

SEND_CASES = [
    case
    for name in ("mailgun", "mailjet")
    for case in discover_cases(name)
    if case.has_expectation and case.expected.get("decision") == "send" and not case.answers
]


@pytest.mark.parametrize("case", SEND_CASES, ids=[c.id for c in SEND_CASES])
def test_every_golden_send_path_lands_in_the_fake(case: GoldenCase, presets: dict[str, CompiledPreset]) -> None:
    preset = presets[case.preset]
    settings = {k: v for k, v in case.settings.items() if k != "relay"}
    with FakeServer(fake_for(preset, settings)) as server:
        outcome = deliverer(preset, settings, server).deliver(case.event)
        assert outcome.status == "delivered", outcome
        body = case.expected["requests"][-1]["body"]
        if preset.name == "mailgun":
            vendor = server.vendor
            assert isinstance(vendor, MailgunFake)
            member = vendor.member(settings["list_address"], body["address"])
            assert member is not None
            assert member["vars"] == json.loads(body["vars"])
            if "name" in body:
                assert member["name"] == body["name"]
            if "subscribed" in body:
                assert member["subscribed"] is (body["subscribed"] == "true")
        else:
            vendor = server.vendor
            assert isinstance(vendor, MailjetFake)
            contact = vendor.contact(body["Email"])
            assert contact is not None
            assert contact["Properties"] == body.get("Properties", {})
            if "Name" in body:
                assert contact["Name"] == body["Name"]
            status = "unsubscribed" if body["Action"] == "unsub" else "subscribed"
            assert contact["Lists"] == {str(settings["list_id"]): status}


def test_mailgun_vars_survive_identified_page_order(mailgun: CompiledPreset) -> None:
    email = {"traits": {"email": "jane@example.com"}}
    events = [
        {
            "type": "identify",
            "anonymousId": "a1",
            "traits": {"email": "jane@example.com", "plan": "pro", "company": "Acme", "name": "Jane"},
        },
        {"type": "page", "anonymousId": "a1", "context": {**email, "page": {"url": "https://x.test/p"}}},
        {
            "type": "track",
            "event": "Order Completed",
            "anonymousId": "a1",
            "context": email,
            "properties": {"order_id": "O-1", "revenue": 12.5, "currency": "usd"},
        },
    ]
    with FakeServer(fake_for(mailgun, MAILGUN_SETTINGS)) as server:
        delivery = deliverer(mailgun, MAILGUN_SETTINGS, server)
        outcomes = [delivery.deliver(event) for event in events]
        assert [o.status for o in outcomes] == ["delivered"] * 3
        assert [o.lookups for o in outcomes] == [1, 1, 1]
        assert [o.requests for o in outcomes] == [2, 2, 2]  # the read-before-write shows in the stats
        vendor = server.vendor
        assert isinstance(vendor, MailgunFake)
        member = vendor.member(MAILGUN_SETTINGS["list_address"], "jane@example.com")
    assert member is not None and member["name"] == "Jane"
    assert member["vars"] == {
        "anonymous_id": "a1",
        "plan": "pro",
        "company": "Acme",
        "last_page_url": "https://x.test/p",
        "last_order_id": "O-1",
        "last_order_revenue": 12.5,
        "last_order_currency": "USD",
    }


SIGNUP = {
    "type": "track",
    "event": "Signed Up",
    "properties": {"method": "email"},
    "context": {"traits": {"email": "sam@example.com"}},
}


@pytest.mark.parametrize(
    ("fault", "read_timeout"),
    [
        (Fault("status", status=429, times=2), 5.0),  # 429 with no Retry-After: backoff on the status alone
        (Fault("status", status=503, times=3), 5.0),
        (Fault("delay", seconds=0.4, times=1), 0.1),  # a read timeout
        (Fault("drop", times=2), 5.0),  # connection dropped mid-request
    ],
    ids=["429-no-retry-after", "503", "timeout", "connection-reset"],
)
def test_transient_failures_are_retried_until_success(
    mailjet: CompiledPreset, fault: Fault, read_timeout: float
) -> None:
    expected_retries = fault.times
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS)) as server:
        server.inject(fault)
        sleeps = Sleeps()
        outcome = deliverer(mailjet, MAILJET_SETTINGS, server, read_timeout=read_timeout, sleeps=sleeps).deliver(SIGNUP)
        assert outcome.status == "delivered", outcome
        assert outcome.retries == expected_retries and outcome.attempts == expected_retries + 1
        assert len(sleeps) == expected_retries
        assert all(0 <= s <= 0.5 * 2 ** (i) for i, s in enumerate(sleeps))  # exponential, jittered
        vendor = server.vendor
        assert isinstance(vendor, MailjetFake) and vendor.contact("sam@example.com") is not None


def test_retries_stop_at_max_attempts_when_one_is_set(mailjet: CompiledPreset) -> None:
    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS)) as server:
        server.inject(Fault("status", status=503, times=99))
        outcome = deliverer(mailjet, MAILJET_SETTINGS, server, max_attempts=4).deliver(SIGNUP)
    assert outcome.status == "failed"
    assert (outcome.http_status, outcome.attempts) == (503, 4)


def test_retries_go_on_until_the_delivery_deadline(mailjet: CompiledPreset) -> None:
    """No cap by default: a 5xx outage is ridden out for as long as the deadline allows."""
    assert mailjet.delivery.max_attempts is None and mailjet.delivery.deadline == 86400
    now = [1_700_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with FakeServer(fake_for(mailjet, MAILJET_SETTINGS)) as server:
        server.inject(Fault("status", status=503, times=30))
        outcome = deliverer(mailjet, MAILJET_SETTINGS, server, sleeps=sleep, clock=lambda: now[0]).deliver(SIGNUP)
        assert outcome.status == "delivered" and outcome.attempts == 31
        server.inject(Fault("status", status=503, times=10_000))
        short = deliverer(mailjet, MAILJET_SETTINGS, server, sleeps=sleep, clock=lambda: now[0], deadline=120)
        failed = short.deliver(SIGNUP)
    assert failed.status == "failed" and failed.http_status == 503
    assert "still failing after the delivery deadline" in str(failed.reason)


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({"X-RateLimit-Reset": "1700000004"}, 4.0),  # epoch seconds
        ({"X-RateLimit-Reset": "1700000002500"}, 2.5),  # epoch milliseconds
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "3600"}, None),  # longer than backoff.max: fall back to our own backoff
    ],
)
def test_rate_limit_headers_set_the_wait(
    mailgun: CompiledPreset, headers: dict[str, str], expected_wait: float | None
) -> None:
    from relay.delivery.deliver import Deliverer
    from relay.delivery.transport import MockTransport, Response

    answers = [Response(429, {"Content-Type": "application/json", **headers}, b'{"message": "Too Many Requests"}')]

    def handler(request: Any) -> Response:
        if request.method == "GET":
            return Response(404, {"Content-Type": "application/json"}, b'{"message": "Member not found"}')
        return answers.pop() if answers else Response(200, {"Content-Type": "application/json"}, b"{}")

    sleeps = Sleeps()
    settings = mailgun.resolve_settings(MAILGUN_SETTINGS, environ={})
    delivery = Deliverer(mailgun, settings, MockTransport(handler), sleep=sleeps, clock=lambda: 1700000000.0)
    outcome = delivery.deliver({"type": "identify", "traits": {"email": "a@example.com"}})
    assert outcome.status == "delivered" and outcome.retries == 1
    if expected_wait is None:
        assert 0 <= sleeps[0] <= mailgun.delivery.backoff_base
    else:
        assert sleeps == [pytest.approx(expected_wait)]


HINT_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], int, list[str]]] = [
    (
        "mailgun-wrong-key",
        "mailgun",
        {**MAILGUN_SETTINGS, "api_key": "key-wrong"},
        {},
        401,
        ["Forbidden", "Private API key", "region"],
    ),
    (
        "mailgun-wrong-list",
        "mailgun",
        {**MAILGUN_SETTINGS, "list_address": "other@mg.example.com"},
        {},
        404,
        ["not found", "does not exist", "other@mg.example.com"],
    ),
    (
        "mailjet-wrong-secret",
        "mailjet",
        {**MAILJET_SETTINGS, "secret_key": "sec-wrong"},
        {},
        401,
        ["API Key", "Secret Key"],
    ),
    (
        "mailjet-wrong-list",
        "mailjet",
        {**MAILJET_SETTINGS, "list_id": 424242},
        {},
        404,
        ["Object not found", "Contact list 424242"],
    ),
    (
        "mailjet-undefined-property",
        "mailjet",
        MAILJET_SETTINGS,
        {"define_properties": False},
        400,
        ["Object properties invalid", "create contact property 'signup_method' with datatype str"],
    ),
]


@pytest.mark.parametrize(
    ("preset_name", "settings", "fake_options", "status", "phrases"),
    [c[1:] for c in HINT_CASES],
    ids=[c[0] for c in HINT_CASES],
)
def test_permanent_failures_carry_vendor_message_and_hint(
    presets: dict[str, CompiledPreset],
    preset_name: str,
    settings: dict[str, Any],
    fake_options: dict[str, Any],
    status: int,
    phrases: list[str],
) -> None:
    preset = presets[preset_name]
    real = MAILGUN_SETTINGS if preset_name == "mailgun" else MAILJET_SETTINGS
    with FakeServer(fake_for(preset, real, **fake_options)) as server:
        outcome = deliverer(preset, settings, server).deliver(SIGNUP)
    assert outcome.status == "failed" and outcome.http_status == status and outcome.attempts == 1
    text = f"{outcome.reason} {outcome.hint}"
    for phrase in phrases:
        assert phrase in text, text
    for secret in ("key-wrong", "sec-wrong", "sec-test-0000", "key-test-0000"):
        assert secret not in text


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        ({}, 1000.0, None),
        ({"Retry-After": "3"}, 1000.0, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1445412475.0, 5.0),
        ({"X-RateLimit-Reset": "1620637985"}, 1620637982.0, 3.0),  # epoch seconds (mailgun-go's reading)
        ({"X-Ratelimit-Reset": "1620637982656"}, 1620637980.0, 2.656),  # epoch milliseconds (seen live)
        ({"X-RateLimit-Reset": "7"}, 1000.0, 7.0),  # a delta
        ({"X-RateLimit-Reset": "1620637900"}, 1620637982.0, 0.0),  # already past
        ({"Retry-After": "soon"}, 1000.0, None),
    ],
)
def test_wait_from_headers(headers: dict[str, str], now: float, expected: float | None) -> None:
    wait = wait_from_headers(headers, now)
    assert wait == pytest.approx(expected) if expected is not None else wait is None


def test_token_bucket_paces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate=10, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        bucket.acquire()
    assert waits == pytest.approx([0.1, 0.1, 0.1])  # a burst of 2, then 10 per second
    assert now[0] == pytest.approx(0.3)


def _consent(email: str, marketing: bool | None, plan: str) -> dict[str, Any]:
    context: dict[str, Any] = {} if marketing is None else {"consent": {"canonical": {"marketing": marketing}}}
    return {"type": "identify", "traits": {"email": email, "plan": plan}, "context": context}


@pytest.mark.parametrize("omitted_subscribed", ["keep", "reset"])
def test_mailgun_unknown_consent_never_changes_a_members_status(
    mailgun: CompiledPreset, omitted_subscribed: str
) -> None:
    """Whatever Mailgun does with an upsert that leaves `subscribed` out, unknown consent keeps the status."""
    vendor = MailgunFake(
        api_key=MAILGUN_SETTINGS["api_key"],
        lists=[MAILGUN_SETTINGS["list_address"]],
        omitted_subscribed=omitted_subscribed,
    )
    with FakeServer(vendor) as server:
        delivery = deliverer(mailgun, MAILGUN_SETTINGS, server)
        events = [
            _consent("kept@example.com", False, "free"),  # withdrawn: unsubscribed
            _consent("kept@example.com", None, "pro"),  # unknown: must stay unsubscribed
            _consent("new@example.com", None, "free"),  # unknown, new member: Mailgun's default
        ]
        assert [delivery.deliver(e).status for e in events] == ["delivered"] * 3
        kept = vendor.member(MAILGUN_SETTINGS["list_address"], "kept@example.com")
        new = vendor.member(MAILGUN_SETTINGS["list_address"], "new@example.com")
    assert kept is not None and (kept["subscribed"], kept["vars"]["plan"]) == (False, "pro")
    assert new is not None and new["subscribed"] is True


def test_the_mailgun_fake_serves_both_readings_of_an_omitted_subscribed() -> None:
    """The switch itself: without relay's explicit status, 'reset' re-subscribes, 'keep' does not."""
    from relay.fakes import FakeRequest

    outcomes = {}
    for behaviour in ("keep", "reset"):
        vendor = MailgunFake(api_key="k", lists=["l@mg.example.com"], omitted_subscribed=behaviour)
        for form in ("address=a%40example.com&subscribed=no&upsert=yes", "address=a%40example.com&upsert=yes"):
            vendor.handle(
                FakeRequest(
                    "POST",
                    "/v3/lists/l@mg.example.com/members",
                    "/v3/lists/l@mg.example.com/members",
                    {},
                    {"authorization": "Basic YXBpOms=", "content-type": "application/x-www-form-urlencoded"},
                    form.encode(),
                )
            )
        member = vendor.member("l@mg.example.com", "a@example.com")
        assert member is not None
        outcomes[behaviour] = member["subscribed"]
    assert outcomes == {"keep": False, "reset": True}

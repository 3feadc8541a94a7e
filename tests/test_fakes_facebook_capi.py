"""The Conversions API fake enforces what fakes/README.md#facebook_capi says the real API does:
the token and pixel, up to 1,000 events per request, one bad event rejecting the whole request
in a Graph API error, hashed customer information, the 7-day window, and deduplication."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from relay.fakes import FacebookCAPIFake, FakeServer, RateLimit
from tests.fake_helpers import Case, call, check, run_case

TOKEN, PIXEL = "EAAB-test", "123456789012345"
NOW = 1_795_424_520
PATH = f"/v21.0/{PIXEL}/events"
HASHED = hashlib.sha256(b"jane@example.com").hexdigest()


def fake() -> FacebookCAPIFake:
    vendor = FacebookCAPIFake(access_token=TOKEN, pixels=[PIXEL])
    vendor.clock = lambda: NOW
    return vendor


def event(name: str = "Purchase", **changes: Any) -> dict[str, Any]:
    base = {
        "event_name": name,
        "event_time": NOW - 60,
        "event_id": f"{name}-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/done",
        "user_data": {"em": [HASHED], "client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.9"},
        "custom_data": {"value": 12.5, "currency": "EUR"},
    }
    base.update(changes)
    return base


def form(*events: dict[str, Any], **fields: str) -> dict[str, Any]:
    return {"data": {"data": json.dumps(list(events)), "access_token": TOKEN, **fields}}


def _refused(pointer: str) -> dict[str, Any]:
    return {"at": {"error.code": 100, "error.type": "OAuthException"}, "contains": pointer}


CASES = [
    Case(
        "received", "POST", PATH, 200, {"at": {"events_received": 2, "messages": []}}, form(event(), event("AddToCart"))
    ),
    Case(
        "json-body",
        "POST",
        PATH,
        200,
        {"at": {"events_received": 1}},
        {"json": {"data": [event()], "access_token": TOKEN}},
    ),
    Case(
        "token-in-query",
        "POST",
        f"{PATH}?access_token={TOKEN}",
        200,
        {"at": {"events_received": 1}},
        {"data": {"data": json.dumps([event()])}},
    ),
    Case("no-token", "POST", PATH, 400, {"at": {"error.code": 104}}, {"data": {"data": json.dumps([event()])}}),
    Case(
        "wrong-token",
        "POST",
        PATH,
        400,
        {"at": {"error.code": 190, "error.message": "Invalid OAuth access token - Cannot parse access token"}},
        {"data": {"data": json.dumps([event()]), "access_token": "EAAB-wrong"}},
    ),
    Case(
        "unknown-pixel",
        "POST",
        "/v21.0/999/events",
        400,
        {"at": {"error.code": 100, "error.error_subcode": 33}},
        form(event()),
    ),
    Case(
        "no-data",
        "POST",
        PATH,
        400,
        {"at": {"error.code": 100}, "contains": "data is required"},
        {"data": {"access_token": TOKEN}},
    ),
    Case(
        "over-1000-events",
        "POST",
        PATH,
        400,
        {"at": {"error.code": 100}, "contains": "at most 1000"},
        form(*[event(event_id=str(i)) for i in range(1001)]),
    ),
    Case(
        "one-bad-event-rejects-all",
        "POST",
        PATH,
        400,
        _refused("data/1/user_data/em/0"),
        form(event(), event(user_data={"em": ["jane@example.com"], "client_user_agent": "x"})),
    ),
    Case("too-old", "POST", PATH, 400, _refused("data/0/event_time"), form(event(event_time=NOW - 8 * 86400))),
    Case(
        "website-needs-user-agent",
        "POST",
        PATH,
        400,
        _refused("data/0/user_data/client_user_agent"),
        form(event(user_data={"em": [HASHED]})),
    ),
    Case(
        "website-needs-source-url",
        "POST",
        PATH,
        400,
        _refused("data/0/event_source_url"),
        form(event(event_source_url=None)),
    ),
    Case(
        "app-needs-neither",
        "POST",
        PATH,
        200,
        {"at": {"events_received": 1}},
        form(event(action_source="app", event_source_url=None, user_data={"em": [HASHED]})),
    ),
    Case(
        "unknown-action-source", "POST", PATH, 400, _refused("data/0/action_source"), form(event(action_source="web"))
    ),
    Case("empty-user-data", "POST", PATH, 400, _refused("data/0/user_data"), form(event(user_data={}))),
    Case(
        "bad-currency",
        "POST",
        PATH,
        400,
        _refused("data/0/custom_data/currency"),
        form(event(custom_data={"value": 1, "currency": "euro"})),
    ),
    Case(
        "throttled",
        "POST",
        PATH,
        400,
        {"at": {"error.code": 4, "error.is_transient": True}},
        form(event()),
        before=lambda v: v.throttle(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conversions_api_answers_as_meta_does(case: Case) -> None:
    run_case(fake(), case, {})


def test_events_are_kept_per_pixel_test_events_apart_and_deduplicated_by_name_and_id() -> None:
    vendor = fake()
    with FakeServer(vendor) as server:
        for body in (form(event(), event("AddToCart")), form(event()), form(event(), test_event_code="TEST1")):
            check(call(server, "POST", PATH, **body), 200, {})
    kept = vendor.contact_state()[PIXEL]
    assert [e["event_name"] for e in kept["events"]] == ["AddToCart", "Purchase"]
    assert [e["event_name"] for e in kept["test_events"]] == ["Purchase"]
    assert vendor.snapshot()["deduplicated"] == 1


def test_a_fault_on_one_event_rejects_the_whole_request() -> None:
    vendor = fake()
    vendor.fail_item("AddToCart-1", "blocked")
    with FakeServer(vendor) as server:
        answer = call(server, "POST", PATH, **form(event(), event("AddToCart")))
    check(answer, 400, {"at": {"error.error_user_msg": "data/1: blocked"}})
    assert vendor.contact_state()[PIXEL]["events"] == []


def test_a_server_rate_limit_answers_graphs_throttling_error() -> None:
    with FakeServer(fake(), rate_limit=RateLimit(1, 1.0)) as server:
        call(server, "POST", PATH, **form(event()))
        answer = call(server, "POST", PATH, **form(event()))
    check(answer, 400, {"at": {"error.code": 4}})
    assert "call_count" in answer.headers["X-App-Usage"]


def test_one_event_per_request_and_one_batch_end_in_the_same_state() -> None:
    stream = [
        event("PageView", event_id="m1"),
        event("AddToCart", event_id="m2"),
        event(event_id="m3"),
        event(event_id="m3"),
    ]
    unbatched, batched = fake(), fake()
    with FakeServer(unbatched) as one, FakeServer(batched) as many:
        for single in stream:
            check(call(one, "POST", PATH, **form(single)), 200, {})
        check(call(many, "POST", PATH, **form(*stream)), 200, {"at": {"events_received": 4}})
    assert unbatched.contact_state() == batched.contact_state()
    assert len(unbatched.contact_state()[PIXEL]["events"]) == 3

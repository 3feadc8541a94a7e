"""The Customer.io fake enforces what fakes/README.md#customerio says the Track API does: v1
identify and events with the documented limits and messages, anonymous events merged on
identify, and the v2 batch with its size limits and 207 per-operation errors."""

from __future__ import annotations

from typing import Any

import pytest

from relay.fakes import CustomerIOFake, FakeServer, RateLimit
from tests.fake_helpers import Case, call, check, run_case

AUTH = ("site-test", "cio-test")


def person(action: str, who: str = "u-1", **extra: Any) -> dict[str, Any]:
    return {"type": "person", "action": action, "identifiers": {"id": who}, **extra}


CASES = [
    Case(
        "no-auth",
        "PUT",
        "/api/v1/customers/u-1",
        401,
        {"json": {"meta": {"error": "Unauthorized request"}}},
        {"auth": ("site-test", "wrong"), "json": {}},
    ),
    Case("region", "GET", "/api/v1/accounts/region", 200, {"at": {"region": "us"}}),
    Case(
        "identify",
        "PUT",
        "/api/v1/customers/u-1",
        200,
        {"json": {}},
        {"json": {"email": "a@example.com", "plan": "pro"}},
    ),
    Case(
        "too-many-attributes",
        "PUT",
        "/api/v1/customers/u-1",
        400,
        {"json": {"meta": {"error": "cannot identify more than 300 attributes in one request"}}},
        {"json": {f"a{i}": i for i in range(301)}},
    ),
    Case(
        "long-attribute-name",
        "PUT",
        "/api/v1/customers/u-1",
        400,
        {"json": {"meta": {"error": "attribute name cannot be longer than 150 bytes"}}},
        {"json": {"n" * 151: 1}},
    ),
    Case(
        "long-attribute-value",
        "PUT",
        "/api/v1/customers/u-1",
        400,
        {"json": {"meta": {"error": "value for attribute 'bio' cannot be longer than 1000 bytes"}}},
        {"json": {"bio": "x" * 1001}},
    ),
    Case(
        "event", "POST", "/api/v1/customers/u-1/events", 200, {"json": {}}, {"json": {"name": "Signed Up", "data": {}}}
    ),
    Case(
        "blank-event-name",
        "POST",
        "/api/v1/customers/u-1/events",
        400,
        {"json": {"meta": {"error": "event name must not be blank"}}},
        {"json": {"name": " ", "data": {}}},
    ),
    Case(
        "long-event-name",
        "POST",
        "/api/v1/customers/u-1/events",
        400,
        {"json": {"meta": {"error": "event name cannot be longer than 100 bytes"}}},
        {"json": {"name": "e" * 101, "data": {}}},
    ),
    Case(
        "event-data-not-a-hash",
        "POST",
        "/api/v1/customers/u-1/events",
        400,
        {"at": {"meta.error": 'event data must be a hash (e.g., send "data":{} instead of "data":"")'}},
        {"json": {"name": "x", "data": ""}},
    ),
    Case(
        "event-data-too-large",
        "POST",
        "/api/v1/events",
        400,
        {"json": {"meta": {"error": "event data cannot be longer than 100000 bytes"}}},
        {"json": {"name": "x", "anonymous_id": "an-1", "data": {"x": "y" * 100_000}}},
    ),
    Case(
        "anonymous-event",
        "POST",
        "/api/v1/events",
        200,
        {"json": {}},
        {"json": {"name": "Viewed", "anonymous_id": "an-1", "data": {}}},
    ),
    Case(
        "batch",
        "POST",
        "/api/v2/batch",
        200,
        {"empty": True},
        {"json": {"batch": [person("identify", attributes={"plan": "pro"}), person("event", name="Signed Up")]}},
    ),
    Case(
        "batch-not-an-array",
        "POST",
        "/api/v2/batch",
        400,
        {"at": {"meta.error": "batch must be an array of entities"}},
        {"json": {"batch": {}}},
    ),
    Case(
        "batch-over-500kb",
        "POST",
        "/api/v2/batch",
        400,
        {"contains": "500kb"},
        {"json": {"batch": [person("identify", attributes={"bio": "x" * 900}) for _ in range(600)]}},
    ),
    Case(
        "batch-partial",
        "POST",
        "/api/v2/batch",
        207,
        {
            "json": {
                "errors": [
                    {
                        "batch_index": 1,
                        "reason": "id attribute cannot be an empty string",
                        "field": "identifiers",
                        "message": "id attribute cannot be an empty string",
                    },
                    {
                        "batch_index": 2,
                        "reason": "each request in a batch must be 32kb or smaller",
                        "field": "",
                        "message": "each request in a batch must be 32kb or smaller",
                    },
                ]
            }
        },
        {
            "json": {
                "batch": [
                    person("identify"),
                    person("identify", who=""),
                    person("identify", attributes={f"a{i}": "x" * 900 for i in range(40)}),
                ]
            }
        },
    ),
    Case(
        "entity",
        "POST",
        "/api/v2/entity",
        200,
        {"empty": True},
        {"json": person("identify", attributes={"plan": "pro"})},
    ),
    Case(
        "entity-refused",
        "POST",
        "/api/v2/entity",
        400,
        {"at": {"meta.error": "event name must not be blank"}},
        {"json": person("event")},
    ),
    Case(
        "throttled",
        "POST",
        "/api/v1/events",
        429,
        {"at": {"meta.error": "rate limit exceeded"}},
        {"json": {"name": "x", "data": {}}},
        before=lambda v: v.throttle(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_customerio_answers_as_the_track_api_does(case: Case) -> None:
    run_case(CustomerIOFake(), case, {"auth": AUTH})


def test_identify_merges_attributes_and_the_visitors_anonymous_events() -> None:
    vendor = CustomerIOFake()
    with FakeServer(vendor) as server:
        call(
            server,
            "POST",
            "/api/v1/events",
            auth=AUTH,
            json={"name": "Viewed", "anonymous_id": "an-1", "data": {"p": 1}},
        )
        call(server, "PUT", "/api/v1/customers/u-1", auth=AUTH, json={"plan": "free"})
        call(server, "PUT", "/api/v1/customers/u-1", auth=AUTH, json={"email": "a@example.com", "anonymous_id": "an-1"})
    state = vendor.contact_state()
    assert state["people"]["u-1"] == {"plan": "free", "email": "a@example.com", "anonymous_id": "an-1"}
    assert state["events"]["u-1"] == [{"name": "Viewed", "type": "event", "data": {"p": 1}}]
    assert state["anonymous_events"] == {}


def test_a_fault_fails_one_batch_operation_and_the_rest_apply() -> None:
    vendor = CustomerIOFake()
    vendor.fail_item('"u-2"', "person is blocked")
    with FakeServer(vendor) as server:
        answer = call(
            server,
            "POST",
            "/api/v2/batch",
            auth=AUTH,
            json={"batch": [person("identify", "u-1"), person("identify", "u-2"), person("identify", "u-3")]},
        )
    check(answer, 207, {"at": {"errors.0.batch_index": 1, "errors.0.reason": "person is blocked"}})
    assert sorted(vendor.contact_state()["people"]) == ["u-1", "u-3"]


def test_a_rate_limit_answers_429() -> None:
    with FakeServer(CustomerIOFake(), rate_limit=RateLimit(1, 1.0)) as server:
        call(server, "GET", "/api/v1/accounts/region", auth=AUTH)
        answer = call(server, "GET", "/api/v1/accounts/region", auth=AUTH)
    check(answer, 429, {"at": {"meta.error": "rate limit exceeded"}})


def test_v1_requests_one_by_one_and_one_v2_batch_end_in_the_same_state() -> None:
    unbatched, batched = CustomerIOFake(), CustomerIOFake()
    with FakeServer(unbatched) as one, FakeServer(batched) as many:
        call(
            one,
            "POST",
            "/api/v1/events",
            auth=AUTH,
            json={"name": "/pricing", "type": "page", "anonymous_id": "an-1", "data": {}},
        )
        call(one, "PUT", "/api/v1/customers/u-1", auth=AUTH, json={"email": "a@example.com", "anonymous_id": "an-1"})
        call(
            one,
            "POST",
            "/api/v1/customers/u-1/events",
            auth=AUTH,
            json={"name": "Signed Up", "data": {"plan": "pro"}, "timestamp": 1},
        )
        call(one, "PUT", "/api/v1/customers/u-1", auth=AUTH, json={"unsubscribed": True})
        operations = [
            {"type": "person", "action": "page", "anonymous_id": "an-1", "name": "/pricing", "attributes": {}},
            person("identify", attributes={"email": "a@example.com", "anonymous_id": "an-1"}),
            person("event", name="Signed Up", attributes={"plan": "pro"}, timestamp=1),
            person("identify", attributes={"unsubscribed": True}),
        ]
        check(call(many, "POST", "/api/v2/batch", auth=AUTH, json={"batch": operations}), 200, {})
    assert unbatched.contact_state() == batched.contact_state()
    assert unbatched.contact_state()["people"]["u-1"]["unsubscribed"] is True

"""The Mailchimp fake enforces what fakes/README.md#mailchimp says the real API does: members by
subscriber hash, status and status_if_new, merge fields, member events, the compliance state, and
batch subscribe with a per-member error report."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from relay.fakes import FakeServer, MailchimpFake, RateLimit
from relay.fakes.mailchimp import subscriber_hash
from tests.fake_helpers import Case, call, check, run_case

KEY = "0123456789abcdef0123456789abcdef-us21"
LIST = "a1b2c3d4e5"
JANE = subscriber_hash("jane@example.com")
MEMBER = f"/3.0/lists/{LIST}/members/{JANE}"


def fake() -> MailchimpFake:
    return MailchimpFake(api_key=KEY, lists=[LIST])


def _jane(vendor: MailchimpFake) -> None:
    vendor._upsert(vendor.lists[LIST], {"email_address": "jane@example.com", "status": "subscribed"}, None)


CASES = [
    Case(
        "no-key",
        "GET",
        "/3.0/ping",
        401,
        {"at": {"title": "API Key Missing"}, "content_type": "application/problem+json"},
        {"auth": None},
    ),
    Case(
        "wrong-key",
        "GET",
        "/3.0/ping",
        401,
        {"at": {"title": "API Key Invalid", "status": 401}},
        {"auth": ("x", "nope-us21")},
    ),
    Case("ping", "GET", "/3.0/ping", 200, {"json": {"health_status": "Everything's Chimpy!"}}),
    Case("audience", "GET", f"/3.0/lists/{LIST}", 200, {"at": {"id": LIST}}),
    Case(
        "unknown-audience",
        "PUT",
        f"/3.0/lists/nope/members/{JANE}",
        404,
        {"at": {"title": "Resource Not Found"}},
        {"json": {"email_address": "jane@example.com", "status_if_new": "subscribed"}},
    ),
    Case(
        "create",
        "PUT",
        MEMBER,
        200,
        {"at": {"status": "transactional", "id": JANE, "list_id": LIST}},
        {
            "json": {
                "email_address": "Jane@Example.com",
                "status_if_new": "transactional",
                "merge_fields": {"FNAME": "Jane"},
            }
        },
    ),
    Case(
        "new-member-needs-a-status",
        "PUT",
        MEMBER,
        400,
        {"at": {"title": "Invalid Resource", "errors.0.field": "status_if_new"}},
        {"json": {"email_address": "jane@example.com"}},
    ),
    Case(
        "existing-keeps-status",
        "PUT",
        MEMBER,
        200,
        {"at": {"status": "subscribed"}},
        {"json": {"email_address": "jane@example.com", "status_if_new": "pending"}},
        before=_jane,
    ),
    Case(
        "hash-mismatch",
        "PUT",
        MEMBER,
        400,
        {"at": {"errors.0.field": "email_address"}},
        {"json": {"email_address": "john@example.com", "status_if_new": "subscribed"}},
    ),
    Case(
        "fake-address",
        "PUT",
        MEMBER,
        400,
        {"at": {"errors.0.field": "email_address"}, "contains": "looks fake or invalid"},
        {"json": {"email_address": "jane@", "status_if_new": "subscribed"}},
    ),
    Case(
        "bad-status",
        "PUT",
        MEMBER,
        400,
        {"at": {"errors.0.field": "status"}},
        {"json": {"email_address": "jane@example.com", "status": "happy"}},
    ),
    Case(
        "unknown-merge-field",
        "PUT",
        MEMBER,
        400,
        {"at": {"errors.0.field": "merge_fields.PLAN"}},
        {"json": {"email_address": "jane@example.com", "status_if_new": "subscribed", "merge_fields": {"PLAN": "pro"}}},
    ),
    Case(
        "compliance-state",
        "PUT",
        MEMBER,
        400,
        {"at": {"title": "Member In Compliance State"}},
        {"json": {"email_address": "jane@example.com", "status": "subscribed"}},
        before=lambda v: v.in_compliance_state(LIST, "jane@example.com"),
    ),
    Case(
        "event",
        "POST",
        f"{MEMBER}/events",
        204,
        {"empty": True},
        {
            "json": {
                "name": "order_completed",
                "properties": {"total": "12.50"},
                "occurred_at": "2026-11-23T09:00:00+00:00",
            }
        },
        before=_jane,
    ),
    Case(
        "event-needs-a-member",
        "POST",
        f"{MEMBER}/events",
        404,
        {"at": {"title": "Resource Not Found"}},
        {"json": {"name": "order_completed"}},
    ),
    Case(
        "event-name",
        "POST",
        f"{MEMBER}/events",
        400,
        {"at": {"errors.0.field": "name"}},
        {"json": {"name": "x"}},
        before=_jane,
    ),
    Case(
        "event-properties-are-strings",
        "POST",
        f"{MEMBER}/events",
        400,
        {"at": {"errors.0.field": "properties"}},
        {"json": {"name": "order_completed", "properties": {"total": 12.5}}},
        before=_jane,
    ),
    Case(
        "batch-over-500",
        "POST",
        f"/3.0/lists/{LIST}",
        400,
        {"at": {"errors.0.field": "members"}},
        {"json": {"members": [{"email_address": f"p{i}@example.com", "status": "subscribed"} for i in range(501)]}},
    ),
    Case(
        "throttled",
        "GET",
        "/3.0/ping",
        429,
        {"at": {"title": "Too Many Requests", "status": 429}},
        before=lambda v: v.throttle(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mailchimp_answers_as_the_api_does(case: Case) -> None:
    run_case(fake(), case, {"auth": ("relay", KEY)})


def batch(server: FakeServer, *members: dict[str, Any], **options: Any) -> dict[str, Any]:
    answer = call(server, "POST", f"/3.0/lists/{LIST}", auth=("relay", KEY), json={"members": list(members), **options})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_batch_subscribe_reports_each_member_it_could_not_take() -> None:
    vendor = fake()
    vendor.fail_item("blocked@example.com", "blocked by the fault hook")
    _jane(vendor)
    with FakeServer(vendor) as server:
        result = batch(
            server,
            {"email_address": "jane@example.com", "status": "unsubscribed"},
            {"email_address": "new@example.com", "status": "subscribed", "merge_fields": {"FNAME": "New"}},
            {"email_address": "bad@", "status": "subscribed"},
            {"email_address": "blocked@example.com", "status": "subscribed"},
            {"email_address": "new@example.com", "status": "pending"},
        )
    assert [m["email_address"] for m in result["new_members"]] == ["new@example.com"]
    assert (result["total_created"], result["total_updated"], result["error_count"]) == (1, 0, 4)
    codes = {e["email_address"]: e["error_code"] for e in result["errors"]}
    assert codes == {
        "jane@example.com": "ERROR_CONTACT_EXISTS",
        "bad@": "ERROR_GENERIC",
        "blocked@example.com": "ERROR_GENERIC",
        "new@example.com": "ERROR_GENERIC",
    }
    assert vendor.member(LIST, "jane@example.com")["status"] == "subscribed"  # not updated without update_existing


def test_batch_subscribe_with_update_existing_and_skip_duplicate_check() -> None:
    vendor = fake()
    _jane(vendor)
    with FakeServer(vendor) as server:
        result = batch(
            server,
            {"email_address": "jane@example.com", "status": "unsubscribed"},
            {"email_address": "jane@example.com", "status": "subscribed"},
            update_existing=True,
            skip_duplicate_check=True,
        )
    assert (result["total_updated"], result["error_count"]) == (1, 0)
    assert vendor.member(LIST, "jane@example.com")["status"] == "unsubscribed"  # the first appearance is saved


def test_a_rate_limit_answers_mailchimps_429_problem() -> None:
    with FakeServer(fake(), rate_limit=RateLimit(1, 1.0)) as server:
        call(server, "GET", "/3.0/ping", auth=("relay", KEY))
        answer = call(server, "GET", "/3.0/ping", auth=("relay", KEY))
    check(answer, 429, {"at": {"title": "Too Many Requests"}, "content_type": "application/problem+json"})


def test_one_member_per_request_and_one_batch_end_in_the_same_state() -> None:
    stream = [
        {"email_address": "a@example.com", "status_if_new": "transactional", "merge_fields": {"FNAME": "Ann"}},
        {"email_address": "b@example.com", "status_if_new": "subscribed", "status": "subscribed"},
        {
            "email_address": "a@example.com",
            "status_if_new": "subscribed",
            "status": "subscribed",
            "merge_fields": {"LNAME": "Lee"},
        },
        {"email_address": "b@example.com", "status_if_new": "unsubscribed", "status": "unsubscribed"},
    ]
    unbatched, batched = fake(), fake()
    with FakeServer(unbatched) as one, FakeServer(batched) as many:
        for member in stream:
            path = f"/3.0/lists/{LIST}/members/{subscriber_hash(member['email_address'])}"
            assert requests.put(one.url + path, auth=("relay", KEY), json=member, timeout=5).ok
        merged: dict[str, dict[str, Any]] = {}
        for member in stream:  # later fields win; merge fields merge
            mine = merged.setdefault(member["email_address"], {"merge_fields": {}})
            mine.update({k: v for k, v in member.items() if k != "merge_fields"})
            mine["merge_fields"].update(member.get("merge_fields", {}))
        assert batch(many, *merged.values(), update_existing=True)["error_count"] == 0
    assert unbatched.contact_state() == batched.contact_state()
    assert unbatched.contact_state()[LIST]["a@example.com"]["merge_fields"] == {"FNAME": "Ann", "LNAME": "Lee"}

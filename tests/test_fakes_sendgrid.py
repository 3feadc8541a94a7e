"""The SendGrid fake enforces what fakes/README.md#sendgrid says the real API does; its upsert
jobs are state machines with per-contact error reports; a stream sent one contact per request
and the same stream sent as one bulk upsert end in the same contacts."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import requests

from relay.fakes import FakeServer, JobTiming, RateLimit, SendGridFake
from tests.fake_helpers import Case, call, check, run_case

LIST, GROUP, FIELD = "ca7a3796-e8d8-4cf2-9a52-2bd0a1c5f1b3", 4242, "e1_T"
AUTH = {"Authorization": "Bearer SG.test"}


def fake(**options: Any) -> SendGridFake:
    return SendGridFake(lists=[LIST], groups=[GROUP], custom_fields={FIELD: "Text", "w2_N": "Number"}, **options)


def upsert(*contacts: dict[str, Any], lists: list[str] | None = None) -> dict[str, Any]:
    return {"list_ids": [LIST] if lists is None else lists, "contacts": list(contacts)}


CASES = [
    Case(
        "no-key",
        "PUT",
        "/v3/marketing/contacts",
        401,
        {"json": {"errors": [{"field": None, "message": "authorization required"}]}},
        {"headers": {"Authorization": None}},
    ),
    Case(
        "wrong-key",
        "GET",
        "/v3/scopes",
        401,
        {"at": {"errors.0.message": "authorization required"}},
        {"headers": {"Authorization": "Bearer SG.other"}},
    ),
    Case("scopes", "GET", "/v3/scopes", 200, {"at": {"scopes.0": "marketing.contacts.create"}}),
    Case("list", "GET", f"/v3/marketing/lists/{LIST}", 200, {"at": {"id": LIST, "contact_count": 0}}),
    Case("unknown-list", "GET", "/v3/marketing/lists/nope", 404, {"at": {"errors.0.message": "resource not found"}}),
    Case(
        "upsert-queued", "PUT", "/v3/marketing/contacts", 202, {"at": {}}, {"json": upsert({"email": "a@example.com"})}
    ),
    Case("not-json", "PUT", "/v3/marketing/contacts", 400, {"at": {"errors.0.field": None}}, {"data": "{oops"}),
    Case(
        "no-contacts",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "contacts"}},
        {"json": {"list_ids": [LIST]}},
    ),
    Case(
        "unknown-top-field",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "lists"}},
        {"json": {"lists": [], "contacts": [{"email": "a@example.com"}]}},
    ),
    Case(
        "no-identifier",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "contacts[1]"}},
        {"json": upsert({"email": "a@example.com"}, {"first_name": "Jo"})},
    ),
    Case(
        "unknown-contact-field",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "contacts[0].plan"}},
        {"json": upsert({"email": "a@example.com", "plan": "pro"})},
    ),
    Case(
        "name-too-long",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "contacts[0].first_name"}},
        {"json": upsert({"email": "a@example.com", "first_name": "x" * 51})},
    ),
    Case(
        "unknown-list-id",
        "PUT",
        "/v3/marketing/contacts",
        404,
        {"at": {"errors.0.field": "list_ids"}},
        {"json": upsert({"email": "a@example.com"}, lists=["nope"])},
    ),
    Case(
        "too-many-contacts",
        "PUT",
        "/v3/marketing/contacts",
        400,
        {"at": {"errors.0.field": "contacts"}},
        {"json": upsert(*[{"email": f"p{i}@example.com"} for i in range(30_001)])},
    ),
    Case(
        "too-large",
        "PUT",
        "/v3/marketing/contacts",
        413,
        {"contains": "too large"},
        {"json": upsert({"email": "a@example.com", "custom_fields": {FIELD: "x" * (6 * 1024 * 1024)}})},
    ),
    Case(
        "missing-scope",
        "PUT",
        "/v3/marketing/contacts",
        403,
        {"at": {"errors.0.message": "access forbidden"}},
        {"json": upsert({"email": "a@example.com"})},
        before=lambda v: v.configure({"scopes": ["asm.groups.read"]}),
    ),
    Case(
        "suppress",
        "POST",
        f"/v3/asm/groups/{GROUP}/suppressions",
        201,
        {"json": {"recipient_emails": ["a@example.com"]}},
        {"json": {"recipient_emails": ["a@example.com"]}},
    ),
    Case(
        "suppress-bad-address",
        "POST",
        f"/v3/asm/groups/{GROUP}/suppressions",
        400,
        {"at": {"errors.0.field": "recipient_emails"}},
        {"json": {"recipient_emails": ["nope"]}},
    ),
    Case("unknown-job", "GET", "/v3/marketing/contacts/imports/nope", 404, {"at": {"errors.0.field": "id"}}),
    Case(
        "throttled",
        "GET",
        "/v3/scopes",
        429,
        {
            "json": {"errors": [{"field": None, "message": "too many requests"}]},
            "headers": {"X-RateLimit-Remaining": "0"},
        },
        before=lambda v: v.throttle(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sendgrid_answers_as_the_api_does(case: Case) -> None:
    run_case(fake(), case, {"headers": AUTH})


def put(server: FakeServer, body: dict[str, Any]) -> requests.Response:
    return call(server, "PUT", "/v3/marketing/contacts", headers=AUTH, json=body)


def status(server: FakeServer, job_id: str) -> dict[str, Any]:
    answer = call(server, "GET", f"/v3/marketing/contacts/imports/{job_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_an_upsert_job_walks_pending_to_errored_and_reports_each_failed_contact() -> None:
    vendor = fake(timing=JobTiming(polls=2, seconds=None))
    with FakeServer(vendor) as server:
        body = upsert(
            {"email": "Ann@Example.com", "first_name": "Ann", "custom_fields": {FIELD: "pro"}},
            {"email": "not-an-address"},
            {"email": "bo@example.com", "custom_fields": {"zz_T": "x"}},
        )
        job_id = put(server, body).json()["job_id"]
        assert vendor.contact_state()["contacts"] == {}  # nothing is applied before the job runs
        assert status(server, job_id)["status"] == "pending"
        done = status(server, job_id)
        assert done["status"] == "errored" and done["job_type"] == "upsert"
        assert done["results"]["requested_count"] == 3 and done["results"]["created_count"] == 1
        assert done["results"]["errored_count"] == 2
        errors_file = requests.get(done["results"]["errors_url"], headers=AUTH, timeout=5)
        rows = list(csv.DictReader(io.StringIO(errors_file.text)))
    assert [r["email"] for r in rows] == ["not-an-address", "bo@example.com"]
    assert "custom field ID zz_T does not exist" in rows[1]["errors"]
    assert vendor.contact_state()["contacts"]["ann@example.com"]["custom_fields"] == {FIELD: "pro"}


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("item", "errored"), ("job", "failed")],
    ids=["one-item-fails", "whole-job-fails"],
)
def test_fault_hooks_fail_one_item_or_the_whole_job(fault: str, expected: str) -> None:
    vendor = fake()
    if fault == "item":
        vendor.fail_item("b@example.com", "blocked address")
    else:
        vendor.configure({"fail_next_job": "unprocessable"})
    with FakeServer(vendor) as server:
        job_id = put(server, upsert({"email": "a@example.com"}, {"email": "b@example.com"})).json()["job_id"]
        report = status(server, job_id)
    assert report["status"] == expected
    assert sorted(vendor.contact_state()["contacts"]) == (["a@example.com"] if fault == "item" else [])


def test_a_rate_limit_answers_sendgrids_429_with_its_headers() -> None:
    with FakeServer(fake(), rate_limit=RateLimit(1, 60.0)) as server:
        assert call(server, "GET", "/v3/scopes", headers=AUTH).status_code == 200
        answer = call(server, "GET", "/v3/scopes", headers=AUTH)
    check(answer, 429, {"at": {"errors.0.message": "too many requests"}, "headers": {"X-RateLimit-Limit": "1"}})
    assert int(answer.headers["X-RateLimit-Reset"]) > 1_000_000_000  # epoch seconds


def test_documented_route_limits_answer_429_per_key() -> None:
    vendor = fake(documented_limits=True)
    vendor.ROUTE_LIMITS = (type(vendor.ROUTE_LIMITS[0])("PUT", "/v3/marketing/contacts", (RateLimit(2, 60.0),)),)
    with FakeServer(vendor) as server:
        codes = [put(server, upsert({"email": "a@example.com"})).status_code for _ in range(3)]
    assert codes == [202, 202, 429]


STREAM = [
    {"email": "a@example.com", "first_name": "Ann"},
    {"email": "b@example.com", "custom_fields": {FIELD: "free"}},
    {"email": "A@example.com", "last_name": "Lee", "custom_fields": {FIELD: "pro"}},
    {"email": "b@example.com", "first_name": "Bo", "custom_fields": {"w2_N": 3}},
]


def test_one_contact_per_request_and_one_bulk_upsert_end_in_the_same_state() -> None:
    unbatched, batched = fake(), fake(timing=JobTiming(polls=5, seconds=None))
    with FakeServer(unbatched) as one, FakeServer(batched) as bulk:
        for contact in STREAM:
            assert put(one, upsert(contact)).status_code == 202
        coalesced: dict[str, dict[str, Any]] = {}  # per contact, in order: later fields win
        for contact in STREAM:
            mine = coalesced.setdefault(contact["email"].lower(), {"email": contact["email"].lower()})
            mine.update({k: v for k, v in contact.items() if k not in ("email", "custom_fields")})
            mine.setdefault("custom_fields", {}).update(contact.get("custom_fields", {}))
        assert put(bulk, upsert(*coalesced.values())).status_code == 202
        suppress = {"recipient_emails": ["b@example.com"]}
        for server in (one, bulk):
            call(server, "POST", f"/v3/asm/groups/{GROUP}/suppressions", headers=AUTH, json=suppress)
    batched.settle()  # SendGrid processes the queued job eventually
    assert unbatched.contact_state() == batched.contact_state()
    assert unbatched.contact_state()["contacts"]["a@example.com"] == {
        "email": "a@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "custom_fields": {FIELD: "pro"},
        "list_ids": [LIST],
    }
    assert json.dumps(unbatched.snapshot())  # the admin view serialises


def test_suppressing_to_a_missing_group_suppresses_globally() -> None:
    vendor = fake()
    with FakeServer(vendor) as server:
        answer = call(
            server,
            "POST",
            "/v3/asm/groups/999/suppressions",
            headers=AUTH,
            json={"recipient_emails": ["x@example.com"]},
        )
    assert answer.status_code == 201
    assert vendor.contact_state()["global_suppressions"] == ["x@example.com"]

"""The Brevo fake enforces what fakes/README.md#brevo says the real API does: single contacts
(201/204, duplicates, attributes), imports as background processes with a report of the
contacts they could not take, and the same final contacts either way."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import requests

from relay.fakes import BrevoFake, FakeServer, JobTiming, RateLimit
from tests.fake_helpers import Case, call, check, run_case

KEY = {"api-key": "xkeysib-test"}


def fake(**options: Any) -> BrevoFake:
    return BrevoFake(lists=[7], **options)


def contact(email: str = "jane@example.com", **fields: Any) -> dict[str, Any]:
    return {"email": email, "listIds": [7], "updateEnabled": True, **fields}


def imported(*rows: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"listIds": [7], "jsonBody": list(rows), **options}


CASES = [
    Case(
        "no-key",
        "POST",
        "/v3/contacts",
        401,
        {"json": {"code": "unauthorized", "message": "Key not found"}},
        {"headers": {"api-key": None}, "json": contact()},
    ),
    Case("account", "GET", "/v3/account", 200, {"at": {"email": "owner@example.com"}}),
    Case("list", "GET", "/v3/contacts/lists/7", 200, {"at": {"id": 7}}),
    Case("unknown-list", "GET", "/v3/contacts/lists/8", 404, {"at": {"code": "document_not_found"}}),
    Case(
        "create",
        "POST",
        "/v3/contacts",
        201,
        {"at": {"id": 1}},
        {"json": contact(attributes={"FIRSTNAME": "Jane"}, ext_id="a1")},
    ),
    Case(
        "update",
        "POST",
        "/v3/contacts",
        204,
        {"empty": True},
        {"json": contact(attributes={"PLAN": "pro"})},
        before=lambda v: v.contacts.update({"jane@example.com": _stored()}),
    ),
    Case(
        "duplicate-without-update",
        "POST",
        "/v3/contacts",
        400,
        {"json": {"code": "duplicate_parameter", "message": "Contact already exist"}},
        {"json": contact(updateEnabled=False)},
        before=lambda v: v.contacts.update({"jane@example.com": _stored()}),
    ),
    Case(
        "no-identifier", "POST", "/v3/contacts", 400, {"at": {"code": "missing_parameter"}}, {"json": {"listIds": [7]}}
    ),
    Case("bad-email", "POST", "/v3/contacts", 400, {"at": {"code": "invalid_parameter"}}, {"json": contact("nope")}),
    Case(
        "undefined-attribute",
        "POST",
        "/v3/contacts",
        400,
        {"at": {"code": "invalid_parameter"}, "contains": "Attribute COLOUR does not exist"},
        {"json": contact(attributes={"COLOUR": "red"})},
    ),
    Case(
        "unknown-parameter",
        "POST",
        "/v3/contacts",
        400,
        {"at": {"code": "invalid_parameter"}},
        {"json": contact(blacklisted=True)},
    ),
    Case(
        "missing-list",
        "POST",
        "/v3/contacts",
        404,
        {"at": {"code": "document_not_found"}},
        {"json": contact(listIds=[99])},
    ),
    Case(
        "import",
        "POST",
        "/v3/contacts/import",
        202,
        {"at": {"processId": 78}},
        {"json": imported({"email": "a@example.com", "attributes": {"FIRSTNAME": "A"}})},
    ),
    Case(
        "import-needs-a-source",
        "POST",
        "/v3/contacts/import",
        400,
        {"at": {"code": "missing_parameter"}},
        {"json": {"listIds": [7]}},
    ),
    Case(
        "import-needs-lists",
        "POST",
        "/v3/contacts/import",
        400,
        {"at": {"code": "missing_parameter"}},
        {"json": {"jsonBody": [{"email": "a@example.com"}]}},
    ),
    Case(
        "import-over-10mb",
        "POST",
        "/v3/contacts/import",
        400,
        {"at": {"code": "invalid_parameter"}},
        {"json": imported({"email": "a@example.com", "attributes": {"FIRSTNAME": "x" * (10 * 1024 * 1024)}})},
    ),
    Case("unknown-process", "GET", "/v3/processes/5", 404, {"at": {"code": "document_not_found"}}),
    Case(
        "throttled",
        "POST",
        "/v3/contacts",
        429,
        {"at": {"code": "too_many_requests"}, "headers": {"x-sib-ratelimit-remaining": "0"}},
        {"json": contact()},
        before=lambda v: v.throttle(),
    ),
]


def _stored() -> dict[str, Any]:
    return {
        "id": 1,
        "email": "jane@example.com",
        "attributes": {},
        "listIds": set(),
        "emailBlacklisted": False,
        "smsBlacklisted": False,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_brevo_answers_as_the_api_does(case: Case) -> None:
    run_case(fake(), case, {"headers": KEY})


def test_attribute_values_of_the_wrong_type_are_ignored_and_blacklisting_follows_consent() -> None:
    vendor = fake()
    with FakeServer(vendor) as server:
        first = call(
            server,
            "POST",
            "/v3/contacts",
            headers=KEY,
            json=contact(attributes={"LAST_ORDER_VALUE": "lots", "PLAN": "pro"}, emailBlacklisted=True),
        )
        again = call(server, "POST", "/v3/contacts", headers=KEY, json=contact(emailBlacklisted=False))
    assert (first.status_code, again.status_code) == (201, 204)
    stored = vendor.contact_state()["contacts"]["jane@example.com"]
    assert stored["attributes"] == {"PLAN": "pro"}  # "lots" does not fit a float attribute: ignored
    assert stored["emailBlacklisted"] is False


def test_an_import_is_a_process_that_ignores_unknown_attributes_and_reports_bad_contacts() -> None:
    vendor = fake(timing=JobTiming(polls=3, seconds=None))
    with FakeServer(vendor) as server:
        body = imported(
            {"email": "a@example.com", "attributes": {"FIRSTNAME": "A", "COLOUR": "red"}},
            {"email": "not-an-address"},
            {"email": "c@example.com"},
        )
        process = call(server, "POST", "/v3/contacts/import", headers=KEY, json=body).json()["processId"]
        states = [call(server, "GET", f"/v3/processes/{process}", headers=KEY).json() for _ in range(3)]
        report = requests.get(states[-1]["info"]["import"]["invalid_emails_url"], headers=KEY, timeout=5)
    assert [s["status"] for s in states] == ["queued", "processing", "completed"]
    assert states[0]["name"] == "IMPORTUSER"
    assert [row["email"] for row in csv.DictReader(io.StringIO(report.text))] == ["not-an-address"]
    contacts = vendor.contact_state()["contacts"]
    assert sorted(contacts) == ["a@example.com", "c@example.com"]
    assert contacts["a@example.com"]["attributes"] == {"FIRSTNAME": "A"}  # COLOUR is not in the account: ignored


@pytest.mark.parametrize(
    ("options", "plan"),
    [({}, "pro"), ({"emptyContactsAttributes": True}, None), ({"updateExistingContacts": False}, "pro")],
    ids=["empty-keeps", "empty-erases", "existing-left-alone"],
)
def test_import_options_decide_what_happens_to_existing_contacts(options: dict[str, Any], plan: str | None) -> None:
    vendor = fake()
    with FakeServer(vendor) as server:
        call(server, "POST", "/v3/contacts", headers=KEY, json=contact("a@example.com", attributes={"PLAN": "pro"}))
        body = imported({"email": "a@example.com", "attributes": {"PLAN": "", "FIRSTNAME": "A"}}, **options)
        assert call(server, "POST", "/v3/contacts/import", headers=KEY, json=body).status_code == 202
    assert vendor.contact_state()["contacts"]["a@example.com"]["attributes"].get("PLAN") == plan


def test_fault_hooks_fail_one_contact_or_the_whole_import() -> None:
    vendor = fake()
    vendor.fail_item("b@example.com")
    vendor.fail_next_job("disk full")
    with FakeServer(vendor) as server:
        rows = [{"email": "a@example.com"}, {"email": "b@example.com"}]
        first = call(server, "POST", "/v3/contacts/import", headers=KEY, json=imported(*rows)).json()["processId"]
        second = call(server, "POST", "/v3/contacts/import", headers=KEY, json=imported(*rows)).json()["processId"]
        assert call(server, "GET", f"/v3/processes/{first}", headers=KEY).json()["status"] == "completed"
        assert call(server, "GET", f"/v3/processes/{second}", headers=KEY).json()["info"]
    assert [e.key for e in vendor.jobs[str(first)].errors] == ["a@example.com", "b@example.com"]  # failed whole
    assert [e.key for e in vendor.jobs[str(second)].errors] == ["b@example.com"]
    assert sorted(vendor.contact_state()["contacts"]) == ["a@example.com"]


def test_a_rate_limit_answers_brevos_429_with_its_headers() -> None:
    with FakeServer(fake(), rate_limit=RateLimit(1, 1.0)) as server:
        call(server, "GET", "/v3/account", headers=KEY)
        answer = call(server, "GET", "/v3/account", headers=KEY)
    check(answer, 429, {"at": {"code": "too_many_requests"}, "headers": {"x-sib-ratelimit-limit": "1"}})


def test_one_contact_per_request_and_one_import_end_in_the_same_state() -> None:
    stream = [
        ("a@example.com", {"FIRSTNAME": "Ann"}),
        ("b@example.com", {"PLAN": "free"}),
        ("a@example.com", {"LASTNAME": "Lee", "PLAN": "pro"}),
    ]
    unbatched, batched = fake(), fake(timing=JobTiming(polls=2, seconds=None))
    with FakeServer(unbatched) as one, FakeServer(batched) as bulk:
        for email, attributes in stream:
            call(one, "POST", "/v3/contacts", headers=KEY, json=contact(email, attributes=attributes))
        merged: dict[str, dict[str, Any]] = {}
        for email, attributes in stream:
            merged.setdefault(email, {}).update(attributes)
        rows = [{"email": email, "attributes": attributes} for email, attributes in merged.items()]
        assert call(bulk, "POST", "/v3/contacts/import", headers=KEY, json=imported(*rows)).status_code == 202
    batched.settle()
    assert unbatched.contact_state() == batched.contact_state()
    assert unbatched.contact_state()["contacts"]["a@example.com"]["attributes"] == {
        "FIRSTNAME": "Ann",
        "LASTNAME": "Lee",
        "PLAN": "pro",
    }

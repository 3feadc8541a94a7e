"""The Klaviyo fake enforces what fakes/README.md#klaviyo says the real API does: JSON:API
shapes, the revision header, upsert and conflict rules, subscription jobs, and bulk import
jobs with counts and per-profile errors, where null does not clear a field."""

from __future__ import annotations

from typing import Any

import pytest

from relay.fakes import FakeServer, JobTiming, KlaviyoFake, RateLimit
from tests.fake_helpers import Case, call, check, run_case

HEADERS = {
    "Authorization": "Klaviyo-API-Key pk_test",
    "revision": "2024-10-15",
    "Content-Type": "application/vnd.api+json",
}
LIST = "Y6nRLr"


def fake(**options: Any) -> KlaviyoFake:
    return KlaviyoFake(lists=[LIST], **options)


def profile(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": attributes}}


def subscription(consent: str, *emails: str, list_id: str | None = LIST, kind: str = "") -> dict[str, Any]:
    kind = kind or ("create" if consent == "SUBSCRIBED" else "delete")
    data: dict[str, Any] = {
        "type": f"profile-subscription-bulk-{kind}-job",
        "attributes": {
            "profiles": {
                "data": [
                    {
                        "type": "profile",
                        "attributes": {"email": e, "subscriptions": {"email": {"marketing": {"consent": consent}}}},
                    }
                    for e in emails
                ]
            }
        },
    }
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def bulk(*profiles: dict[str, Any], lists: tuple[str, ...] = (LIST,)) -> dict[str, Any]:
    return {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}},
            "relationships": {"lists": {"data": [{"type": "list", "id": x} for x in lists]}},
        }
    }


def _seed(vendor: KlaviyoFake) -> None:
    vendor._upsert({"email": "a@example.com"}, null_clears=True)
    vendor._upsert({"external_id": "u-2"}, null_clears=True)


CASES = [
    Case(
        "no-key",
        "GET",
        "/api/accounts",
        401,
        {"at": {"errors.0.code": "not_authenticated", "errors.0.status": 401}},
        {"headers": {"Authorization": None}},
    ),
    Case(
        "no-revision",
        "GET",
        "/api/accounts",
        400,
        {"at": {"errors.0.code": "invalid"}},
        {"headers": {"revision": None}},
    ),
    Case(
        "accounts",
        "GET",
        "/api/accounts",
        200,
        {"at": {"data.0.type": "account"}, "content_type": "application/vnd.api+json"},
    ),
    Case("list", "GET", f"/api/lists/{LIST}", 200, {"at": {"data.id": LIST}}),
    Case("unknown-list", "GET", "/api/lists/nope", 404, {"at": {"errors.0.code": "not_found"}}),
    Case(
        "create-profile",
        "POST",
        "/api/profile-import",
        201,
        {"at": {"data.type": "profile", "data.attributes.email": "a@example.com"}},
        {"json": profile(email="A@example.com", first_name="Ann")},
    ),
    Case(
        "update-profile",
        "POST",
        "/api/profile-import",
        200,
        {"at": {"data.attributes.first_name": "Ann"}},
        {"json": profile(email="a@example.com", first_name="Ann")},
        before=_seed,
    ),
    Case(
        "duplicate-profile",
        "POST",
        "/api/profile-import",
        409,
        {"at": {"errors.0.code": "duplicate_profile"}, "contains": "duplicate_profile_id"},
        {"json": profile(email="a@example.com", external_id="u-2")},
        before=_seed,
    ),
    Case(
        "wrong-type",
        "POST",
        "/api/profile-import",
        409,
        {"at": {"errors.0.source.pointer": "/data/type"}},
        {"json": {"data": {"type": "person", "attributes": {"email": "a@example.com"}}}},
    ),
    Case(
        "no-identifier",
        "POST",
        "/api/profile-import",
        400,
        {"at": {"errors.0.code": "invalid"}},
        {"json": profile(first_name="Ann")},
    ),
    Case(
        "bad-email",
        "POST",
        "/api/profile-import",
        400,
        {"at": {"errors.0.source.pointer": "/data/attributes/email"}},
        {"json": profile(email="nope")},
    ),
    Case(
        "unknown-field",
        "POST",
        "/api/profile-import",
        400,
        {"at": {"errors.0.source.pointer": "/data/attributes/plan"}},
        {"json": profile(email="a@example.com", plan="pro")},
    ),
    Case(
        "profile-over-100kb",
        "POST",
        "/api/profile-import",
        413,
        {"at": {"errors.0.status": 413}},
        {"json": profile(email="a@example.com", properties={"x": "y" * 102_400})},
    ),
    Case(
        "subscribe",
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        202,
        {"empty": True},
        {"json": subscription("SUBSCRIBED", "a@example.com")},
    ),
    Case(
        "subscribe-wrong-consent",
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        400,
        {"at": {"errors.0.code": "invalid"}},
        {"json": subscription("UNSUBSCRIBED", "a@example.com", kind="create")},
    ),
    Case(
        "subscribe-unknown-list",
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        404,
        {"at": {"errors.0.code": "not_found"}},
        {"json": subscription("SUBSCRIBED", "a@example.com", list_id="nope")},
    ),
    Case(
        "unsubscribe-over-100",
        "POST",
        "/api/profile-subscription-bulk-delete-jobs",
        400,
        {"at": {"errors.0.code": "invalid"}},
        {"json": subscription("UNSUBSCRIBED", *[f"p{i}@example.com" for i in range(101)])},
    ),
    Case(
        "bulk-import",
        "POST",
        "/api/profile-bulk-import-jobs",
        202,
        {
            "at": {
                "data.type": "profile-bulk-import-job",
                "data.attributes.status": "complete",
                "data.attributes.total_count": 1,
            }
        },
        {"json": bulk({"email": "a@example.com"})},
    ),
    Case(
        "bulk-over-10000",
        "POST",
        "/api/profile-bulk-import-jobs",
        400,
        {"at": {"errors.0.code": "invalid"}},
        {"json": bulk(*[{"email": f"p{i}@example.com"} for i in range(10_001)])},
    ),
    Case(
        "bulk-over-5mb",
        "POST",
        "/api/profile-bulk-import-jobs",
        413,
        {"at": {"errors.0.status": 413}},
        {"json": bulk(*[{"email": f"p{i}@example.com", "properties": {"x": "y" * 60_000}} for i in range(90)])},
    ),
    Case("unknown-job", "GET", "/api/profile-bulk-import-jobs/nope", 404, {"at": {"errors.0.code": "not_found"}}),
    Case(
        "throttled",
        "GET",
        "/api/accounts",
        429,
        {"at": {"errors.0.code": "throttled", "errors.0.status": 429}, "headers": {"Retry-After": "1"}},
        before=lambda v: v.throttle(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_klaviyo_answers_as_the_api_does(case: Case) -> None:
    run_case(fake(), case, {"headers": HEADERS})


def test_null_clears_a_field_on_profile_import_but_not_in_a_bulk_import() -> None:
    vendor = fake()
    with FakeServer(vendor) as server:
        call(
            server,
            "POST",
            "/api/profile-import",
            headers=HEADERS,
            json=profile(email="a@example.com", first_name="Ann", properties={"plan": "pro"}),
        )
        call(
            server,
            "POST",
            "/api/profile-bulk-import-jobs",
            headers=HEADERS,
            json=bulk({"email": "a@example.com", "first_name": None, "properties": {"plan": None}}),
        )
        kept = dict(vendor.contact_state()["profiles"]["a@example.com"])
        call(
            server,
            "POST",
            "/api/profile-import",
            headers=HEADERS,
            json=profile(email="a@example.com", first_name=None, properties={"plan": None}),
        )
    assert (kept["first_name"], kept["properties"]) == ("Ann", {"plan": "pro"})
    cleared = vendor.contact_state()["profiles"]["a@example.com"]
    assert "first_name" not in cleared and cleared["properties"] == {}


def test_a_bulk_import_job_walks_its_states_and_reports_each_failed_profile() -> None:
    vendor = fake(timing=JobTiming(polls=3, seconds=None))
    with FakeServer(vendor) as server:
        body = bulk({"email": "a@example.com"}, {"email": "nope"}, {"first_name": "No Identifier"})
        job = call(server, "POST", "/api/profile-bulk-import-jobs", headers=HEADERS, json=body).json()["data"]
        assert job["attributes"]["status"] == "queued" and job["attributes"]["completed_count"] == 0
        seen = [
            call(server, "GET", f"/api/profile-bulk-import-jobs/{job['id']}", headers=HEADERS).json()["data"][
                "attributes"
            ]
            for _ in range(3)
        ]
        errors = call(server, "GET", f"/api/profile-bulk-import-jobs/{job['id']}/import-errors", headers=HEADERS).json()
    assert [s["status"] for s in seen] == ["queued", "processing", "complete"]
    assert (seen[-1]["completed_count"], seen[-1]["failed_count"], seen[-1]["total_count"]) == (1, 2, 3)
    assert [e["attributes"]["source"]["pointer"] for e in errors["data"]] == [
        "/data/attributes/profiles/data/1/attributes/email",
        "/data/attributes/profiles/data/2/attributes",
    ]
    assert errors["data"][0]["type"] == "import-error"
    assert errors["data"][0]["attributes"]["original_payload"]["attributes"] == {"email": "nope"}
    assert vendor.contact_state()["profiles"]["a@example.com"]["lists"] == [LIST]


def test_a_job_that_fails_whole_is_cancelled_with_every_profile_failed() -> None:
    vendor = fake()
    vendor.fail_next_job("import aborted")
    with FakeServer(vendor) as server:
        job = call(
            server,
            "POST",
            "/api/profile-bulk-import-jobs",
            headers=HEADERS,
            json=bulk({"email": "a@example.com"}, {"email": "b@example.com"}),
        ).json()["data"]
    assert (job["attributes"]["status"], job["attributes"]["failed_count"]) == ("cancelled", 2)
    assert vendor.contact_state()["profiles"] == {}


def test_subscription_jobs_change_consent_and_list_membership_and_drop_failed_items_silently() -> None:
    vendor = fake()
    vendor.fail_item("b@example.com", "blocked")
    with FakeServer(vendor) as server:
        for body, path in (
            (subscription("SUBSCRIBED", "a@example.com", "b@example.com"), "create"),
            (subscription("UNSUBSCRIBED", "c@example.com"), "delete"),
        ):
            check(
                call(server, "POST", f"/api/profile-subscription-bulk-{path}-jobs", headers=HEADERS, json=body),
                202,
                {"empty": True},
            )
    profiles = vendor.contact_state()["profiles"]
    assert (profiles["a@example.com"]["consent"], profiles["a@example.com"]["lists"]) == ("SUBSCRIBED", [LIST])
    assert profiles["c@example.com"]["consent"] == "UNSUBSCRIBED"
    assert "b@example.com" not in profiles
    assert vendor.snapshot()["dropped"] == [
        {"job": "profile-subscription-bulk-create-job", "profile": "b@example.com", "reason": "blocked"}
    ]


def test_documented_limits_answer_429_with_retry_after() -> None:
    with FakeServer(fake(documented_limits=True)) as server:
        codes = [
            call(
                server, "POST", "/api/profile-bulk-import-jobs", headers=HEADERS, json=bulk({"email": "a@example.com"})
            ).status_code
            for _ in range(11)
        ]
    assert codes == [202] * 10 + [429]  # burst: 10 a second


def test_a_server_rate_limit_answers_klaviyos_429() -> None:
    with FakeServer(fake(), rate_limit=RateLimit(1, 5.0)) as server:
        call(server, "GET", "/api/accounts", headers=HEADERS)
        answer = call(server, "GET", "/api/accounts", headers=HEADERS)
    check(answer, 429, {"at": {"errors.0.code": "throttled"}, "headers": {"Retry-After": "5"}})


def test_one_profile_per_request_and_one_bulk_import_end_in_the_same_state() -> None:
    stream = [
        {"email": "a@example.com", "first_name": "Ann", "properties": {"plan": "free"}},
        {"email": "b@example.com", "external_id": "u-2"},
        {"email": "a@example.com", "last_name": "Lee", "properties": {"plan": "pro", "seats": 3}},
    ]
    unbatched, batched = fake(), fake(timing=JobTiming(polls=9, seconds=None))
    with FakeServer(unbatched) as one, FakeServer(batched) as many:
        for attributes in stream:
            call(one, "POST", "/api/profile-import", headers=HEADERS, json=profile(**attributes))
        merged: dict[str, dict[str, Any]] = {}
        for attributes in stream:
            mine = merged.setdefault(attributes["email"], {"properties": {}})
            mine.update({k: v for k, v in attributes.items() if k != "properties"})
            mine["properties"].update(attributes.get("properties", {}))
        call(many, "POST", "/api/profile-bulk-import-jobs", headers=HEADERS, json=bulk(*merged.values(), lists=()))
    batched.settle()
    assert unbatched.contact_state() == batched.contact_state()

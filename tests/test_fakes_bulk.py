"""What every stateful fake shares (relay.fakes.bulk): jobs advanced by reads or by a pinned
clock, settle(), fault hooks reachable over /_fake/configure, and documented per-route limits."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from relay.fakes import FAKES, BulkVendor, FakeServer, JobTiming, KlaviyoFake, SendGridFake
from tests.fake_helpers import call

AUTH = {"Authorization": "Bearer SG.test"}
LIST = "L1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def put(server: FakeServer, email: str) -> str:
    answer = call(
        server, "PUT", "/v3/marketing/contacts", headers=AUTH, json={"list_ids": [LIST], "contacts": [{"email": email}]}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def test_a_job_finishes_when_its_time_has_come_by_the_vendors_clock() -> None:
    clock = Clock()
    vendor = SendGridFake(lists=[LIST], timing=JobTiming(polls=100, seconds=30.0))
    vendor.clock = clock
    with FakeServer(vendor) as server:
        job_id = put(server, "a@example.com")
        assert (
            call(server, "GET", f"/v3/marketing/contacts/imports/{job_id}", headers=AUTH).json()["status"] == "pending"
        )
        assert vendor.contact_state()["contacts"] == {}
        clock.now += 30
        assert (
            call(server, "GET", f"/v3/marketing/contacts/imports/{job_id}", headers=AUTH).json()["status"]
            == "completed"
        )
    assert list(vendor.contact_state()["contacts"]) == ["a@example.com"]


def test_jobs_apply_in_the_order_they_finish_and_settle_finishes_them_all_oldest_first() -> None:
    vendor = SendGridFake(lists=[LIST], custom_fields={"e1_T": "Text"}, timing=JobTiming(polls=1, seconds=None))
    with FakeServer(vendor) as server:
        first = call(
            server,
            "PUT",
            "/v3/marketing/contacts",
            headers=AUTH,
            json={"contacts": [{"email": "a@example.com", "first_name": "Old"}]},
        ).json()["job_id"]
        call(
            server,
            "PUT",
            "/v3/marketing/contacts",
            headers=AUTH,
            json={"contacts": [{"email": "a@example.com", "first_name": "New"}]},
        )
        call(server, "GET", f"/v3/marketing/contacts/imports/{first}", headers=AUTH)  # only the first has finished
        assert vendor.contact_state()["contacts"]["a@example.com"]["first_name"] == "Old"
    vendor.settle()
    assert vendor.contact_state()["contacts"]["a@example.com"]["first_name"] == "New"
    assert all(job.done for job in vendor.jobs.values())


def test_fault_hooks_are_reachable_over_the_admin_endpoint() -> None:
    vendor = SendGridFake(lists=[LIST])
    with FakeServer(vendor) as server:
        hooks = {
            "fail_items": [{"contains": "b@example.com", "message": "bounced"}],
            "throttle": {"times": 1, "path_contains": "scopes"},
            "jobs": {"polls": 2, "seconds": None},
        }
        assert requests.post(f"{server.url}/_fake/configure", json=hooks, timeout=5).ok
        assert call(server, "GET", "/v3/scopes", headers=AUTH).status_code == 429
        assert call(server, "GET", "/v3/scopes", headers=AUTH).status_code == 200  # the throttle was for one request
        job_id = put(server, "b@example.com")
        states = [
            call(server, "GET", f"/v3/marketing/contacts/imports/{job_id}", headers=AUTH).json()["status"]
            for _ in range(2)
        ]
        state = requests.get(f"{server.url}/_fake/state", timeout=5).json()
    assert states == ["pending", "failed"]
    assert state["jobs"][job_id]["results"]["errored_count"] == 1


def test_a_rejected_request_changes_nothing() -> None:
    vendor = KlaviyoFake()
    headers = {"Authorization": "Klaviyo-API-Key pk_test", "revision": "2024-10-15"}
    bad = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": "a@example.com"}}]}},
            "relationships": {"lists": {"data": [{"type": "list", "id": "missing"}]}},
        }
    }
    with FakeServer(vendor) as server:
        assert call(server, "POST", "/api/profile-bulk-import-jobs", headers=headers, json=bad).status_code == 404
    assert vendor.contact_state() == {"profiles": {}} and vendor.jobs == {}


@pytest.mark.parametrize("name", sorted(n for n, cls in FAKES.items() if issubclass(cls, BulkVendor)))
def test_every_stateful_fake_starts_empty_and_serialises_its_state(name: str) -> None:
    vendor: Any = FAKES[name]()
    assert isinstance(vendor.contact_state(), dict)
    title, columns, rows = vendor.table()
    assert title and columns and rows == []
    assert requests.compat.json.dumps(vendor.snapshot())

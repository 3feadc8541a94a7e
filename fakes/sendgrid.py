"""A stateful fake of SendGrid's Marketing Campaigns contacts API (facts: fakes/README.md#sendgrid).

``PUT /v3/marketing/contacts`` upserts up to 30,000 contacts (6 MB) as an asynchronous job
(202 ``{job_id}``); ``GET /v3/marketing/contacts/imports/{id}`` walks it through ``pending``
to ``completed``, ``errored`` (some contacts failed) or ``failed`` (all did), with an
``errors_url`` whose CSV names each failed contact. Suppressions, scopes and lists are served
as the preset uses them.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .bulk import EMAIL, BulkVendor, ItemError, Job, JobTiming, Reject, RouteLimit, iso
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["SendGridFake"]

MAX_CONTACTS = 30_000
MAX_BYTES = 6 * 1024 * 1024
RESERVED_FIELDS = {
    "email", "first_name", "last_name", "alternate_emails", "address_line_1", "address_line_2",
    "city", "state_province_region", "postal_code", "country", "phone_number", "whatsapp", "line",
    "facebook", "unique_name", "external_id", "anonymous_id", "phone_number_id", "custom_fields",
}  # fmt: skip
IDENTIFIERS = ("email", "phone_number_id", "external_id", "anonymous_id")
NAME_LIMIT = 50  # first_name and last_name (approx.)
ALL_SCOPES = [
    "marketing.contacts.create",
    "marketing.contacts.read",
    "asm.groups.suppressions.create",
    "asm.groups.read",
]


def _errors(status: int, *problems: tuple[str | None, str], **headers: str) -> FakeResponse:
    return FakeResponse.json(status, {"errors": [{"field": f, "message": m} for f, m in problems]}, **headers)


def _bad(field: str | None, message: str) -> Reject:
    return Reject(_errors(400, (field, message)))


class SendGridFake(BulkVendor):
    name = "sendgrid"
    # SendGrid publishes no per-route figures; the default is the 600/min it announced for v2
    # routes (approx.). A test sets its own with FakeServer's RateLimit.
    ROUTE_LIMITS = (RouteLimit("PUT", "/v3/marketing/contacts", (RateLimit(600, 60.0),)),)

    def __init__(
        self,
        api_key: str = "SG.test",
        lists: list[str] | None = None,
        groups: list[int] | None = None,
        custom_fields: dict[str, str] | None = None,
        *,
        timing: JobTiming | None = None,
        documented_limits: bool = False,
    ) -> None:
        super().__init__(timing=timing, documented_limits=documented_limits)
        self.api_key = api_key
        self.scopes = list(ALL_SCOPES)
        self.lists: dict[str, dict[str, Any]] = {}
        self.groups: dict[int, set[str]] = {}
        self.global_suppressions: set[str] = set()
        self.custom_fields: dict[str, str] = dict(custom_fields or {})  # id -> "Text" | "Number"
        self.contacts: dict[str, dict[str, Any]] = {}
        for list_id in lists or []:
            self.add_list(list_id)
        for group in groups or []:
            self.groups.setdefault(int(group), set())

    # -- setup and inspection ---------------------------------------------------------------

    def add_list(self, list_id: str, name: str = "") -> None:
        self.lists[list_id] = {"id": list_id, "name": name or f"list {list_id}"}

    def _configure(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key", self.api_key)
        self.scopes = list(settings.get("scopes", self.scopes))
        for list_id in settings.get("lists", []):
            self.add_list(str(list_id))
        for group in settings.get("groups", []):
            self.groups.setdefault(int(group), set())
        self.custom_fields.update(settings.get("custom_fields", {}))

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key = str(settings["api_key"])
        if settings.get("list_id"):
            self.add_list(str(settings["list_id"]))
        if settings.get("unsubscribe_group_id") is not None:
            self.groups.setdefault(int(settings["unsubscribe_group_id"]), set())
        if settings.get("plan_field_id"):
            self.custom_fields.setdefault(str(settings["plan_field_id"]), "Text")

    def _state(self) -> dict[str, Any]:
        return {
            "contacts": {
                email: {**{k: v for k, v in c.items() if k != "id"}, "list_ids": sorted(c["list_ids"])}
                for email, c in sorted(self.contacts.items())
            },
            "suppressions": {str(g): sorted(emails) for g, emails in sorted(self.groups.items()) if emails},
            "global_suppressions": sorted(self.global_suppressions),
        }

    def snapshot(self) -> dict[str, Any]:
        jobs = {job.id: self._job_view(job, "") for job in self.jobs.values()}
        return {**self.contact_state(), "jobs": jobs}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        suppressed = {e: g for g, emails in self.groups.items() for e in emails}
        rows = [
            [
                email,
                " ".join(filter(None, [c.get("first_name"), c.get("last_name")])),
                ", ".join(sorted(c["list_ids"])),
                c.get("custom_fields", {}),
                "global" if email in self.global_suppressions else suppressed.get(email, ""),
            ]
            for email, c in sorted(self.contacts.items())
        ]
        return "SendGrid contacts", ["email", "name", "lists", "custom fields", "suppressed"], rows

    # -- protocol ------------------------------------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:
        return _errors(401, (None, "authorization required"))

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        reset = math.ceil(time.time() + (limit.window or 1.0))
        return _errors(
            429,
            (None, "too many requests"),
            **{"X-RateLimit-Limit": str(limit.limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        )

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/"), request.method
        if path == "/v3/scopes" and method == "GET":
            return FakeResponse.json(200, {"scopes": self.scopes})
        if path == "/v3/marketing/contacts" and method == "PUT":
            self._require_scope("marketing.contacts.create")
            return self._upsert(request)
        found = re.fullmatch(r"/v3/marketing/contacts/imports/errors/([^/]+)", path)
        if found and method == "GET":
            return self._errors_file(found.group(1))
        found = re.fullmatch(r"/v3/marketing/contacts/imports/([^/]+)", path)
        if found and method == "GET":
            job = self.jobs.get(found.group(1))
            if job is None:
                return _errors(404, ("id", "job not found"))
            return FakeResponse.json(200, self._job_view(self.poll(job), request.headers.get("host", "")))
        found = re.fullmatch(r"/v3/marketing/lists/([^/]+)", path)
        if found and method == "GET":
            lst = self.lists.get(found.group(1))
            if lst is None:
                return _errors(404, (None, "resource not found"))
            members = sum(found.group(1) in c["list_ids"] for c in self.contacts.values())
            return FakeResponse.json(200, {**lst, "contact_count": members})
        found = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions", path)
        if found and method == "POST":
            self._require_scope("asm.groups.suppressions.create")
            return self._suppress(int(found.group(1)), request)
        return _errors(404, (None, "resource not found"))

    def _require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Reject(_errors(403, (None, "access forbidden")))

    # -- PUT /v3/marketing/contacts --------------------------------------------------------------

    def _upsert(self, request: FakeRequest) -> FakeResponse:
        if len(request.body) > MAX_BYTES:
            raise Reject(_errors(413, (None, f"request body too large: the limit is {MAX_BYTES} bytes")))
        body = self.json_body(request, lambda why: _errors(400, (None, why)))
        if not isinstance(body, dict):
            raise _bad(None, "the request body must be a JSON object")
        unknown = sorted(set(body) - {"list_ids", "contacts"})
        if unknown:
            raise _bad(unknown[0], "unknown field")
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise _bad("contacts", "contacts is required and must be a non-empty array")
        if len(contacts) > MAX_CONTACTS:
            raise _bad("contacts", f"contacts must contain at most {MAX_CONTACTS} items")
        list_ids = body.get("list_ids", [])
        if not isinstance(list_ids, list) or not all(isinstance(x, str) for x in list_ids):
            raise _bad("list_ids", "list_ids must be an array of strings")
        missing = [x for x in list_ids if x not in self.lists]
        if missing:
            raise Reject(_errors(404, ("list_ids", f"list ID {missing[0]} does not exist")))
        for index, contact in enumerate(contacts):
            _check_shape(index, contact)
        keys = [str(c.get("email") or c.get("external_id") or c.get("anonymous_id") or "") for c in contacts]
        job = self.start_job("upsert", keys, lambda job: self._apply(job, contacts, list_ids), job_id=str(uuid.uuid4()))
        return FakeResponse.json(202, {"job_id": job.id})

    def _apply(self, job: Job, contacts: list[dict[str, Any]], list_ids: list[str]) -> list[ItemError]:
        errors, created, updated = [], 0, 0
        for index, contact in enumerate(contacts):
            problem = self._contact_problem(contact)
            if problem is not None:
                errors.append(ItemError(index, str(contact.get("email", "")), problem[1], problem[0]))
                continue
            key = str(contact["email"]).lower()
            existing = self.contacts.get(key)
            if existing is None:
                existing = self.contacts[key] = {"id": str(uuid.uuid4()), "email": key, "list_ids": set()}
                created += 1
            else:
                updated += 1
            for name, value in contact.items():  # fields left out keep their values
                if name == "custom_fields":
                    existing.setdefault("custom_fields", {}).update(value)
                elif name != "email":
                    existing[name] = value
            existing["list_ids"] |= set(list_ids)
        job.meta.update(created=created, updated=updated)
        return errors

    def _contact_problem(self, contact: dict[str, Any]) -> tuple[str, str] | None:
        injected = self.item_fault(contact)
        if injected is not None:
            return "email", injected or "contact could not be processed"
        email = contact.get("email")
        if not isinstance(email, str) or not EMAIL.match(email):
            return "email", "email address is invalid"
        for field_id, value in (contact.get("custom_fields") or {}).items():
            kind = self.custom_fields.get(field_id)
            if kind is None:
                return f"custom_fields.{field_id}", f"custom field ID {field_id} does not exist"
            wanted = (int, float) if kind == "Number" else str
            if not isinstance(value, wanted) or isinstance(value, bool):
                return f"custom_fields.{field_id}", f"custom field {field_id} expects a {kind.lower()} value"
        return None

    def _job_view(self, job: Job, host: str) -> dict[str, Any]:
        view: dict[str, Any] = {"id": job.id, "status": self.job_status(job), "job_type": job.kind}
        results: dict[str, Any] = {"requested_count": job.total}
        if job.done:
            results.update(
                created_count=job.meta.get("created", 0),
                updated_count=job.meta.get("updated", 0),
                deleted_count=0,
                errored_count=len(job.errors),
            )
            if job.errors:
                results["errors_url"] = (
                    f"http://{host or 'api.sendgrid.com'}/v3/marketing/contacts/imports/errors/{job.id}"
                )
            view["finished_at"] = iso(job.finished or 0.0)
        view.update(results=results, started_at=iso(job.created))
        return view

    def job_status(self, job: Job) -> str:
        if not job.done:
            return "pending"
        if not job.errors:
            return "completed"
        return "failed" if len(job.errors) == job.total else "errored"

    def _errors_file(self, job_id: str) -> FakeResponse:
        job = self.jobs.get(job_id)
        if job is None or not job.done:
            return _errors(404, (None, "resource not found"))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "errors"])
        for error in job.errors:
            writer.writerow([error.key, error.message])
        return FakeResponse(200, out.getvalue().encode(), {"Content-Type": "text/csv"})

    # -- POST /v3/asm/groups/{id}/suppressions -------------------------------------------------

    def _suppress(self, group: int, request: FakeRequest) -> FakeResponse:
        body = self.json_body(request, lambda why: _errors(400, (None, why)))
        emails = body.get("recipient_emails") if isinstance(body, dict) else None
        if not isinstance(emails, list) or not emails:
            raise _bad("recipient_emails", "recipient_emails is required and must be a non-empty array")
        for email in emails:
            if not isinstance(email, str) or not EMAIL.match(email):
                raise _bad("recipient_emails", f"{email} is not a valid email address")
            injected = self.item_fault(email)
            if injected is not None:
                raise _bad("recipient_emails", injected or f"{email} could not be suppressed")
        # A missing (or deleted) group adds to the global suppression list instead.
        target = self.groups.get(group, self.global_suppressions)
        target.update(e.lower() for e in emails)
        return FakeResponse.json(201, {"recipient_emails": emails})


def _check_shape(index: int, contact: Any) -> None:
    """What SendGrid refuses before it queues the job (a 400 naming the field)."""
    where = f"contacts[{index}]"
    if not isinstance(contact, dict):
        raise _bad(where, "each contact must be an object")
    unknown = sorted(set(contact) - RESERVED_FIELDS)
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", "unknown field")
    if not any(contact.get(name) for name in IDENTIFIERS):
        raise _bad(
            where, "a contact needs at least one identifier (email, phone_number_id, external_id or anonymous_id)"
        )
    for name in ("first_name", "last_name"):
        value = contact.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > NAME_LIMIT):
            raise _bad(f"{where}.{name}", f"{name} must be a string of at most {NAME_LIMIT} characters")
    if "custom_fields" in contact and not isinstance(contact["custom_fields"], dict):
        raise _bad(f"{where}.custom_fields", "custom_fields must be an object")

"""A stateful fake of Mailchimp's Marketing API 3.0 audiences (facts: fakes/README.md#mailchimp).

- ``PUT /3.0/lists/{list}/members/{md5 of the lowercased email}`` upserts a member: ``status``
  changes anyone, ``status_if_new`` only a new member; merge fields are merged key by key.
- ``POST .../members/{hash}/events`` records an event on an existing member (204).
- ``POST /3.0/lists/{list}`` batch-subscribes up to 500 members synchronously, answering
  ``new_members``, ``updated_members`` and a per-member ``errors[]`` (``ERROR_CONTACT_EXISTS``
  without ``update_existing``).
- ``POST /3.0/batches`` runs many operations as one asynchronous batch (``mailchimp_batches``).
Auth is HTTP Basic with any user name and the key as password; errors are problem+json. The
data centre is in the host name, which a redirect hides, so it is not checked here.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .bulk import EMAIL, BulkVendor, Job, JobTiming, Reject
from .mailchimp_batches import RESULTS_PATH, BatchOperations
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["MailchimpFake", "subscriber_hash"]

MAX_BATCH = 500
STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
DEFAULT_MERGE_FIELDS = ("FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_-]{2,30}$")
MEMBER_FIELDS = {
    "email_address", "status", "status_if_new", "merge_fields", "email_type", "language", "vip", "location",
    "marketing_permissions", "ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt", "tags",
}  # fmt: skip
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def _problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> FakeResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        body["errors"] = errors
    return FakeResponse(
        status, FakeResponse.json(status, body).body, {"Content-Type": "application/problem+json; charset=utf-8"}
    )


def _invalid(field: str, message: str) -> Reject:
    detail = "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
    return Reject(_problem(400, "Invalid Resource", detail, [{"field": field, "message": message}]))


def _not_found() -> FakeResponse:
    return _problem(404, "Resource Not Found", "The requested resource could not be found.")


class MailchimpFake(BulkVendor):
    name = "mailchimp"

    def __init__(
        self,
        api_key: str = "0123456789abcdef0123456789abcdef-us21",
        lists: list[str] | None = None,
        *,
        timing: JobTiming | None = None,
    ) -> None:
        super().__init__(timing=timing)
        self.api_key = api_key
        self.batches = BatchOperations(self, self._route, _problem)
        self.lists: dict[str, dict[str, Any]] = {}
        for list_id in lists or []:
            self.add_list(list_id)

    # -- setup and inspection ---------------------------------------------------------------

    def add_list(self, list_id: str, merge_fields: tuple[str, ...] = DEFAULT_MERGE_FIELDS) -> None:
        self.lists[list_id] = {"id": list_id, "name": f"audience {list_id}", "merge_fields": set(merge_fields),
                               "members": {}, "compliance": set()}  # fmt: skip

    def _configure(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key", self.api_key)
        for list_id in settings.get("lists", []):
            self.add_list(str(list_id), tuple(settings.get("merge_fields", DEFAULT_MERGE_FIELDS)))
        for list_id, emails in settings.get("compliance", {}).items():
            self.lists[str(list_id)]["compliance"].update(e.lower() for e in emails)

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key = str(settings["api_key"])
        if settings.get("list_id") and settings["list_id"] not in self.lists:
            self.add_list(str(settings["list_id"]))

    def in_compliance_state(self, list_id: str, email: str) -> None:
        """The person unsubscribed or bounced through Mailchimp: the API may not subscribe them again."""
        with self.lock:
            self.lists[list_id]["compliance"].add(email.lower())

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        member: dict[str, Any] | None = self.lists[list_id]["members"].get(subscriber_hash(email))
        return member

    def _state(self) -> dict[str, Any]:
        return {
            list_id: {
                m["email_address"]: {k: v for k, v in m.items() if k not in ("id", "unique_email_id")}
                for m in sorted(lst["members"].values(), key=lambda m: str(m["email_address"]))
            }
            for list_id, lst in sorted(self.lists.items())
        }

    def snapshot(self) -> dict[str, Any]:
        batches = {job.id: self.batches.view(job, "") for job in self.jobs.values()}
        return {"lists": self.contact_state(), "batches": batches}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [list_id, email, m["status"], m["merge_fields"], ", ".join(e["name"] for e in m["events"])]
            for list_id, members in self.contact_state().items()
            for email, m in members.items()
        ]
        return "Mailchimp audience members", ["audience", "email", "status", "merge fields", "events"], rows

    # -- protocol ------------------------------------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:
        if request.path.startswith(RESULTS_PATH):
            return True  # a batch's results: a storage link, signed in itself
        credentials = request.basic_credentials()
        return credentials is not None and credentials[1] == self.api_key  # any user name

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:
        if request.basic_credentials() is None:
            return _problem(401, "API Key Missing", "Your request did not include an API key.")
        return _problem(
            401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter."
        )

    def job_status(self, job: Job) -> str:
        return str(self.batches.view(job, "")["status"])

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        return _problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/"), request.method
        if path == "/3.0/ping" and method == "GET":
            return FakeResponse.json(200, {"health_status": "Everything's Chimpy!"})
        if self.batches.handles(path):
            return self.batches.handle(request)
        found = re.fullmatch(r"/3\.0/lists/([^/]+)(?:/members/([^/]+)(/events)?)?", path)
        if not found:
            return _not_found()
        list_id, member_hash, events = found.groups()
        lst = self.lists.get(list_id)
        if lst is None:
            return _not_found()
        if member_hash is None and method == "GET":
            return FakeResponse.json(
                200, {"id": list_id, "name": lst["name"], "stats": {"member_count": len(lst["members"])}}
            )
        if member_hash is None and method == "POST":
            return self._batch(lst, request)
        if events and method == "POST":
            return self._event(lst, member_hash, request)
        member = lst["members"].get(member_hash)
        if method == "PUT" and not events:
            return self._put(lst, member_hash, request)
        if member is None:
            return _not_found()
        if method == "GET" and events:
            return FakeResponse.json(200, {"events": member["events"], "total_items": len(member["events"])})
        if method == "GET":
            return FakeResponse.json(200, _view(list_id, member))
        return _problem(405, "Method Not Allowed", f"The requested method and resource are not compatible: {method}.")

    # -- members --------------------------------------------------------------------------------

    def _member_problem(
        self, lst: dict[str, Any], body: Any, existing: dict[str, Any] | None
    ) -> tuple[str, str] | None:
        """What Mailchimp refuses in a member's body: (field, message), or None."""
        if not isinstance(body, dict):
            return "", "each member must be an object"
        unknown = sorted(set(body) - MEMBER_FIELDS)
        if unknown:
            return unknown[0], "Schema describes object, unknown property"
        email = body.get("email_address")
        if not isinstance(email, str) or not email:
            return "email_address", "This value should not be blank."
        if not EMAIL.match(email):
            return "email_address", f"{email} looks fake or invalid, please enter a real email address."
        for name in ("status", "status_if_new"):
            if name in body and body[name] not in STATUSES:
                return name, f"Value must be one of: {', '.join(sorted(STATUSES))}"
        if existing is None and not (body.get("status") or body.get("status_if_new")):
            return "status_if_new", "A new member needs a status (status_if_new)."
        merge_fields = body.get("merge_fields") or {}
        if not isinstance(merge_fields, dict):
            return "merge_fields", "merge_fields must be an object"
        unknown_tags = sorted(set(merge_fields) - lst["merge_fields"])
        if unknown_tags:
            return f"merge_fields.{unknown_tags[0]}", "Your merge fields were invalid: this merge field does not exist."
        return None

    def _upsert(self, lst: dict[str, Any], body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        email = body["email_address"].strip()
        status = body.get("status") or (body.get("status_if_new") if existing is None else None)
        if status == "subscribed" and email.lower() in lst["compliance"]:
            detail = (f"{email} is already a list member in compliance state due to unsubscribe, bounce, or "
                      "compliance review and cannot be subscribed.")  # fmt: skip
            raise Reject(_problem(400, "Member In Compliance State", detail))
        if existing is None:
            existing = lst["members"][subscriber_hash(email)] = {
                "id": subscriber_hash(email), "email_address": email.lower(), "unique_email_id": uuid.uuid4().hex[:10],
                "status": status, "merge_fields": {}, "events": [],
            }  # fmt: skip
        elif status:
            existing["status"] = status
        existing["merge_fields"].update(body.get("merge_fields") or {})  # merged key by key
        if status == "unsubscribed":
            lst["compliance"].discard(email.lower())  # an API unsubscribe may be undone by the API
        return existing

    def _put(self, lst: dict[str, Any], member_hash: str, request: FakeRequest) -> FakeResponse:
        body = self.json_body(request, lambda why: _problem(400, "JSON Parse Exception", why))
        existing = lst["members"].get(member_hash)
        problem = self._member_problem(lst, body, existing)
        if problem is not None:
            raise _invalid(*problem)
        if subscriber_hash(body["email_address"]) != member_hash:
            raise _invalid("email_address", "The email address does not match the subscriber hash in the URL.")
        injected = self.item_fault(body)
        if injected is not None:
            raise _invalid("email_address", injected or "The member could not be saved.")
        return FakeResponse.json(200, _view(lst["id"], self._upsert(lst, body, existing)))

    def _event(self, lst: dict[str, Any], member_hash: str, request: FakeRequest) -> FakeResponse:
        member = lst["members"].get(member_hash)
        if member is None:
            return _not_found()  # events attach to existing members only
        body = self.json_body(request, lambda why: _problem(400, "JSON Parse Exception", why))
        if not isinstance(body, dict):
            raise _invalid("", "the request body must be an object")
        name = body.get("name")
        if not isinstance(name, str) or not EVENT_NAME.match(name):
            raise _invalid("name", "Event names are 2-30 characters: letters, numbers, underscores and dashes.")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
            raise _invalid("properties", "Event properties must be an object of strings.")
        if "occurred_at" in body and not _is_iso8601(body["occurred_at"]):
            raise _invalid("occurred_at", "occurred_at must be an ISO 8601 date-time.")
        if "is_syncing" in body and not isinstance(body["is_syncing"], bool):
            raise _invalid("is_syncing", "is_syncing must be a boolean.")
        injected = self.item_fault(body)
        if injected is not None:
            raise _invalid("name", injected or "The event could not be recorded.")
        member["events"].append({k: body[k] for k in ("name", "properties", "occurred_at", "is_syncing") if k in body})
        return FakeResponse(204)

    # -- POST /3.0/lists/{list}: batch subscribe -----------------------------------------------

    def _batch(self, lst: dict[str, Any], request: FakeRequest) -> FakeResponse:
        body = self.json_body(request, lambda why: _problem(400, "JSON Parse Exception", why))
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            raise _invalid("members", "This value should not be blank.")
        if len(members) > MAX_BATCH:
            raise _invalid("members", f"You may add or update at most {MAX_BATCH} members per request.")
        update_existing = bool(body.get("update_existing"))
        skip_duplicates = bool(body.get("skip_duplicate_check"))
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        seen: set[str] = set()
        for item in members:
            email = item.get("email_address") if isinstance(item, dict) else None
            key = subscriber_hash(email) if isinstance(email, str) else None
            if key is not None and key in seen:
                if not skip_duplicates:  # otherwise the first appearance is the one saved
                    errors.append(_batch_error(email, f"{email} was included more than once in the request."))
                continue
            existing = lst["members"].get(key) if key else None
            problem = self._member_problem(lst, item, existing)
            if problem is not None:
                errors.append(_batch_error(email, problem[1], field=problem[0]))
                continue
            assert key is not None
            seen.add(key)
            if existing is not None and not update_existing:
                message = f"{email} is already a list member. Use PUT to insert or update list members."
                errors.append(_batch_error(email, message, code="ERROR_CONTACT_EXISTS"))
                continue
            injected = self.item_fault(item)
            if injected is not None:
                errors.append(_batch_error(email, injected or f"{email} could not be added."))
                continue
            try:
                member = self._upsert(lst, item, existing)
            except Reject as rejection:
                errors.append(_batch_error(email, _detail(rejection.response)))
                continue
            (created if existing is None else updated).append(_view(lst["id"], member))
        return FakeResponse.json(200, {
            "new_members": created, "updated_members": updated, "errors": errors,
            "total_created": len(created), "total_updated": len(updated), "error_count": len(errors), "_links": [],
        })  # fmt: skip


def _batch_error(email: Any, message: str, *, code: str = "ERROR_GENERIC", field: str = "") -> dict[str, str]:
    error = {"email_address": str(email), "error": message, "error_code": code}
    if field:
        error.update(field=field, field_message=message)
    return error


def _detail(response: FakeResponse) -> str:
    return str(json.loads(response.body)["detail"])


def _is_iso8601(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _view(list_id: str, member: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": member["id"],
        "email_address": member["email_address"],
        "unique_email_id": member["unique_email_id"],
        "status": member["status"],
        "merge_fields": dict(member["merge_fields"]),
        "list_id": list_id,
    }

"""A stateful fake of Brevo's contacts API (facts: fakes/README.md#brevo).

``POST /v3/contacts`` creates a contact (201 ``{id}``) or, with ``updateEnabled``, updates it
(204). ``POST /v3/contacts/import`` takes up to 10 MB (``jsonBody``) as a background process
(202 ``{processId}``) that ``GET /v3/processes/{id}`` walks from ``queued`` through
``processing`` to ``completed``; attributes the account lacks are silently ignored there, and
contacts that could not be imported are listed in a report linked from the process.
``POST /v3/contacts/batch`` updates existing contacts: 204, or 207 ``{successIds, failureIds}``
when some could not be; one unknown contact fails the whole call with 404 (as observed).

The default account has Brevo's standard attributes plus the custom ones the bundled preset's
README asks for (PLAN, SIGNUP_METHOD, LAST_ORDER_VALUE); pass ``attributes`` for another.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from itertools import count
from typing import Any

from .bulk import EMAIL, BulkVendor, ItemError, Job, JobTiming, Reject, RouteLimit
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["BrevoFake"]

MAX_IMPORT_BYTES = 10 * 1024 * 1024
STANDARD_ATTRIBUTES = {"FIRSTNAME": "text", "LASTNAME": "text", "SMS": "text"}
PRESET_ATTRIBUTES = {"PLAN": "text", "SIGNUP_METHOD": "text", "LAST_ORDER_VALUE": "float"}
CONTACT_FIELDS = {
    "email", "ext_id", "attributes", "emailBlacklisted", "smsBlacklisted", "listIds", "updateEnabled",
    "smtpBlacklistSender",
}  # fmt: skip
BATCH_CONTACT_FIELDS = {
    "email", "id", "sms", "ext_id", "attributes", "emailBlacklisted", "smsBlacklisted", "listIds", "unlinkListIds",
    "smtpBlacklistSender",
}  # fmt: skip
IMPORT_FIELDS = {
    "fileUrl", "fileBody", "jsonBody", "listIds", "notifyUrl", "newList", "emailBlacklist", "smsBlacklist",
    "updateExistingContacts", "emptyContactsAttributes", "disableNotification",
}  # fmt: skip


def _error(status: int, code: str, message: str, **headers: str) -> FakeResponse:
    return FakeResponse.json(status, {"code": code, "message": message}, **headers)


def _bad(code: str, message: str) -> Reject:
    return Reject(_error(400, code, message))


def _fits(kind: str, value: Any) -> bool:
    """Whether ``value`` fits an attribute of type ``kind`` (values that don't are ignored)."""
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    if kind == "category":
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if kind == "multiple-choice":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


class BrevoFake(BulkVendor):
    name = "brevo"
    ROUTE_LIMITS = (  # approx.: Brevo publishes per-plan figures, not these
        RouteLimit("POST", "/v3/contacts", (RateLimit(10, 1.0),)),
        RouteLimit("POST", "/v3/contacts/import", (RateLimit(10, 1.0),)),
        RouteLimit("POST", "/v3/contacts/batch", (RateLimit(10, 1.0),)),
    )

    def __init__(
        self,
        api_key: str = "xkeysib-test",
        lists: list[int] | None = None,
        attributes: dict[str, str] | None = None,
        *,
        timing: JobTiming | None = None,
        documented_limits: bool = False,
    ) -> None:
        super().__init__(timing=timing, documented_limits=documented_limits)
        self.api_key = api_key
        self.lists: dict[int, str] = {}
        self.attributes = dict(attributes) if attributes is not None else {**STANDARD_ATTRIBUTES, **PRESET_ATTRIBUTES}
        self.contacts: dict[str, dict[str, Any]] = {}
        self._ids = count(1)
        self._process_ids = count(78)
        for list_id in lists or []:
            self.lists[int(list_id)] = f"list {list_id}"

    # -- setup and inspection ---------------------------------------------------------------

    def _configure(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key", self.api_key)
        for list_id in settings.get("lists", []):
            self.lists[int(list_id)] = f"list {list_id}"
        if "attributes" in settings:
            self.attributes = {str(k).upper(): str(v) for k, v in settings["attributes"].items()}

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key = str(settings["api_key"])
        if settings.get("list_id") is not None:
            self.lists.setdefault(int(settings["list_id"]), f"list {settings['list_id']}")

    def _state(self) -> dict[str, Any]:
        return {
            "contacts": {
                email: {**{k: v for k, v in c.items() if k != "id"}, "listIds": sorted(c["listIds"])}
                for email, c in sorted(self.contacts.items())
            }
        }

    def snapshot(self) -> dict[str, Any]:
        processes = {job.id: self._process_view(job, "") for job in self.jobs.values()}
        return {**self.contact_state(), "processes": processes}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [
                email,
                c.get("ext_id", ""),
                ", ".join(map(str, sorted(c["listIds"]))),
                c["attributes"],
                c["emailBlacklisted"],
            ]
            for email, c in sorted(self.contacts.items())
        ]
        return "Brevo contacts", ["email", "ext_id", "lists", "attributes", "email blacklisted"], rows

    # -- protocol ------------------------------------------------------------------------------

    def credential(self, request: FakeRequest) -> str:
        return request.headers.get("api-key", "")

    def _authorized(self, request: FakeRequest) -> bool:
        return request.headers.get("api-key") == self.api_key

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:
        return _error(401, "unauthorized", "Key not found")

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        reset = str(math.ceil(limit.window or 1.0))
        headers = {
            "x-sib-ratelimit-limit": str(limit.limit),
            "x-sib-ratelimit-remaining": "0",
            "x-sib-ratelimit-reset": reset,
        }
        return _error(429, "too_many_requests", "Too many requests", **headers)

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/"), request.method
        if path == "/v3/account" and method == "GET":
            return FakeResponse.json(200, {"email": "owner@example.com", "companyName": "Example"})
        if path == "/v3/contacts" and method == "POST":
            return self._create(request)
        if path == "/v3/contacts/import" and method == "POST":
            return self._import(request)
        if path == "/v3/contacts/batch" and method == "POST":
            return self._update_batch(request)
        found = re.fullmatch(r"/v3/contacts/lists/(\d+)", path)
        if found and method == "GET":
            list_id = int(found.group(1))
            if list_id not in self.lists:
                return _error(404, "document_not_found", "List ID does not exist")
            members = sum(list_id in c["listIds"] for c in self.contacts.values())
            return FakeResponse.json(200, {"id": list_id, "name": self.lists[list_id], "uniqueSubscribers": members})
        found = re.fullmatch(r"/v3/processes/(\d+)(/report)?", path)
        if found and method == "GET":
            job = self.jobs.get(found.group(1))
            if job is None:
                return _error(404, "document_not_found", "Process does not exist")
            if found.group(2):
                return _report(job)
            return FakeResponse.json(200, self._process_view(self.poll(job), request.headers.get("host", "")))
        found = re.fullmatch(r"/v3/contacts/([^/]+)", path)
        if found and method == "GET":
            contact = self.contacts.get(found.group(1).lower())
            if contact is None:
                return _error(404, "document_not_found", "Contact does not exist")
            return FakeResponse.json(200, {**contact, "listIds": sorted(contact["listIds"])})
        return _error(404, "not_found", f"Invalid route {method} {request.path}")

    def _object(self, request: FakeRequest, allowed: set[str]) -> dict[str, Any]:
        """The JSON object body, holding only ``allowed`` parameters (Brevo refuses others)."""
        body = self.json_body(request, lambda why: _error(400, "bad_request", why))
        if not isinstance(body, dict):
            raise _bad("bad_request", "the request body must be a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _bad("invalid_parameter", f"{unknown[0]} is not a valid parameter")
        return body

    # -- POST /v3/contacts --------------------------------------------------------------------

    def _create(self, request: FakeRequest) -> FakeResponse:
        body = self._object(request, CONTACT_FIELDS)
        email, attributes = body.get("email"), self._defined(body.get("attributes"))
        if email is None and not body.get("ext_id") and "SMS" not in attributes:
            raise _bad("missing_parameter", "email, ext_id or attributes.SMS is required")
        if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
            raise _bad("invalid_parameter", "Invalid email address")
        self._check_lists(body.get("listIds", []))
        injected = self.item_fault(body)
        if injected is not None:
            raise _bad("invalid_parameter", injected or "the contact could not be saved")
        key = str(email).lower() if email else f"ext:{body.get('ext_id')}"
        existing = self.contacts.get(key)
        if existing is not None and not body.get("updateEnabled"):
            raise _bad("duplicate_parameter", "Contact already exist")
        holder = self._holder_of_ext_id(body.get("ext_id"))
        if holder is not None and holder != key:
            raise _bad("duplicate_parameter", "ext_id is already associated with another Contact")
        created = existing is None
        contact = self._upsert(key, email, body.get("ext_id"), attributes, empty_erases=True)
        contact["listIds"] |= set(body.get("listIds", []))
        _set_flags(contact, body)
        return FakeResponse.json(201, {"id": contact["id"]}) if created else FakeResponse(204)

    def _defined(self, attributes: Any) -> dict[str, Any]:
        """``attributes`` (null: none), each of which the account must define (in any case)."""
        if not isinstance(attributes or {}, dict):
            raise _bad("invalid_parameter", "attributes should be an object")
        undefined = sorted(name for name in attributes or {} if name.upper() not in self.attributes)
        if undefined:
            raise _bad("invalid_parameter", f"Attribute {undefined[0]} does not exist in your account")
        return dict(attributes or {})

    def _check_lists(self, list_ids: Any) -> None:
        if not isinstance(list_ids, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in list_ids):
            raise _bad("invalid_parameter", "listIds should be an array of integers")
        missing = [x for x in list_ids if x not in self.lists]
        if missing:
            raise Reject(_error(404, "document_not_found", f"List ID {missing[0]} does not exist"))

    def _holder_of_ext_id(self, ext_id: Any) -> str | None:
        return next((k for k, c in self.contacts.items() if ext_id and c.get("ext_id") == ext_id), None)

    def _upsert(
        self, key: str, email: Any, ext_id: Any, attributes: dict[str, Any], *, empty_erases: bool
    ) -> dict[str, Any]:
        contact = self.contacts.get(key)
        if contact is None:
            contact = self.contacts[key] = {
                "id": next(self._ids),
                "email": str(email).lower() if email else None,
                "attributes": {},
                "listIds": set(),
                "emailBlacklisted": False,
                "smsBlacklisted": False,
            }
        if ext_id:
            contact["ext_id"] = ext_id
        for name, value in attributes.items():
            kind = self.attributes.get(name.upper())
            if kind is None:
                continue  # only an import reaches here with one: it is ignored
            if value in ("", None):
                if empty_erases:
                    contact["attributes"].pop(name.upper(), None)
            elif _fits(kind, value):
                contact["attributes"][name.upper()] = value
            # a value that does not fit the attribute's type is ignored, as Brevo documents
        return contact

    # -- POST /v3/contacts/batch ---------------------------------------------------------------

    def _update_batch(self, request: FakeRequest) -> FakeResponse:
        body = self._object(request, {"contacts"})
        entries = body.get("contacts")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise _bad("invalid_parameter", "contacts should be a non-empty array of objects")
        keys: list[str] = []
        for entry in entries:  # everything is checked before anything is written
            unknown = sorted(set(entry) - BATCH_CONTACT_FIELDS)
            if unknown:
                raise _bad("invalid_parameter", f"{unknown[0]} is not a valid parameter")
            if sum(name in entry for name in ("email", "id", "sms")) != 1:
                raise _bad("invalid_parameter", "pass exactly one contact identifier: email, id or sms")
            self._defined(entry.get("attributes"))
            for field in ("listIds", "unlinkListIds"):
                self._check_lists(entry.get(field, []))
            keys.append(self._key_of(entry))
        missing = [str(index) for index, key in enumerate(keys) if key not in self.contacts]
        if missing:  # observed: the whole call fails, and nothing is updated
            raise Reject(_error(404, "document_not_found", f"No contact found for indexes {','.join(missing)}"))
        succeeded, failed = [], []
        for entry, key in zip(entries, keys, strict=True):
            if self.item_fault(entry) is not None:
                failed.append(self.contacts[key]["id"])
                continue
            contact = self._upsert(key, None, entry.get("ext_id"), entry.get("attributes") or {}, empty_erases=True)
            contact["listIds"] |= set(entry.get("listIds", []))
            contact["listIds"] -= set(entry.get("unlinkListIds", []))
            _set_flags(contact, entry)
            succeeded.append(contact["id"])
        if failed:
            return FakeResponse.json(207, {"successIds": succeeded, "failureIds": failed})
        return FakeResponse(204)

    def _key_of(self, entry: dict[str, Any]) -> str:
        """The contact an entry of a batch update names ('' for none)."""
        if "email" in entry:
            return str(entry["email"]).lower()
        field, wanted = ("id", entry["id"]) if "id" in entry else ("SMS", entry.get("sms"))
        found = (
            k for k, c in self.contacts.items() if (c["id"] if field == "id" else c["attributes"].get("SMS")) == wanted
        )
        return next(found, "")

    # -- POST /v3/contacts/import --------------------------------------------------------------

    def _import(self, request: FakeRequest) -> FakeResponse:
        if len(request.body) > MAX_IMPORT_BYTES:
            raise _bad(
                "invalid_parameter", f"The import body exceeds the maximum allowed size of {MAX_IMPORT_BYTES} bytes"
            )
        body = self._object(request, IMPORT_FIELDS)
        rows = body.get("jsonBody")
        if rows is None and not body.get("fileUrl") and not body.get("fileBody"):
            raise _bad("missing_parameter", "fileUrl, fileBody or jsonBody is required")
        if rows is None:
            raise _bad("invalid_parameter", "this fake imports jsonBody only")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise _bad("invalid_parameter", "jsonBody should be an array of objects")
        if "listIds" not in body and "newList" not in body:
            raise _bad("missing_parameter", "listIds or newList is required")
        list_ids = body.get("listIds", [])
        self._check_lists(list_ids)
        if body.get("newList"):
            list_ids = [*list_ids, self._new_list(body["newList"])]
        options = {
            "blacklist": bool(body.get("emailBlacklist", False)),
            "update": bool(body.get("updateExistingContacts", True)),
            "erase": bool(body.get("emptyContactsAttributes", False)),
        }
        keys = [str(row.get("email", "")) for row in rows]
        job = self.start_job(
            "IMPORTUSER", keys, lambda job: self._apply(rows, list_ids, options), job_id=str(next(self._process_ids))
        )
        return FakeResponse.json(202, {"processId": int(job.id)})

    def _new_list(self, spec: Any) -> int:
        list_id = max(self.lists, default=0) + 1
        self.lists[list_id] = (
            str(spec.get("listName", f"list {list_id}")) if isinstance(spec, dict) else f"list {list_id}"
        )
        return list_id

    def _apply(self, rows: list[dict[str, Any]], list_ids: list[int], options: dict[str, bool]) -> list[ItemError]:
        errors = []
        for index, row in enumerate(rows):
            email = row.get("email")
            injected = self.item_fault(row)
            if injected is not None or not isinstance(email, str) or not EMAIL.match(email):
                errors.append(ItemError(index, str(email), injected or "invalid email address", "email"))
                continue
            given = row.get("attributes")
            attributes: dict[str, Any] = given if isinstance(given, dict) else {}
            if email.lower() in self.contacts and not options["update"]:
                continue  # existing contacts are left alone
            contact = self._upsert(email.lower(), email, row.get("ext_id"), attributes, empty_erases=options["erase"])
            contact["listIds"] |= set(list_ids)
            if options["blacklist"]:
                contact["emailBlacklisted"] = True
        return errors

    def job_status(self, job: Job) -> str:
        return "completed" if job.done else self.running_state(job, ("queued", "processing"))

    def _process_view(self, job: Job, host: str) -> dict[str, Any]:
        view: dict[str, Any] = {"id": int(job.id), "name": job.kind, "status": self.job_status(job)}
        if job.done and job.errors:
            base = f"http://{host or 'api.brevo.com'}/v3/processes/{job.id}/report"
            view["info"] = {"import": {"invalid_emails_url": base}}
        return view


def _set_flags(contact: dict[str, Any], body: dict[str, Any]) -> None:
    """The blacklist flags a body sets (left out: unchanged)."""
    for flag in ("emailBlacklisted", "smsBlacklisted"):
        if isinstance(body.get(flag), bool):
            contact[flag] = body[flag]


def _report(job: Job) -> FakeResponse:
    """The CSV of contacts an import could not take (the process's ``invalid_emails_url``)."""
    if not job.done:
        return _error(404, "document_not_found", "The process has not completed")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "error"])
    for error in job.errors:
        writer.writerow([error.key, error.message])
    return FakeResponse(200, out.getvalue().encode(), {"Content-Type": "text/csv"})

"""A stateful fake of Klaviyo's JSON:API for profiles and subscriptions (facts: fakes/README.md#klaviyo).

``POST /api/profile-import`` upserts one profile (201/200; ``null`` clears; two profiles named by
one request's identifiers: 409 ``duplicate_profile``). Subscription bulk create/delete jobs (202,
no body; 1,000 / 100 profiles) change email consent and list membership asynchronously.
``POST /api/profile-bulk-import-jobs`` (10,000 profiles, 5 MB, 100 KB each) runs as a job:
``queued``, ``processing``, ``complete`` (``cancelled`` when it fails whole), with counts and
per-profile ``import-errors``; ``null`` does not clear there. Requests need the API key and a
``revision`` header; errors are JSON:API ``{"errors": [{id, status, code, title, detail, source}]}``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .bulk import EMAIL, BulkVendor, ItemError, Job, JobTiming, Reject, RouteLimit, iso, json_size
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["KlaviyoFake"]

JSONAPI = "application/vnd.api+json"
MAX_IMPORT_PROFILES = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_PROFILE_BYTES = 100 * 1024
MAX_SUBSCRIBE, MAX_UNSUBSCRIBE = 1000, 100
PROFILE_FIELDS = {
    "email", "phone_number", "external_id", "_kx", "first_name", "last_name", "organization", "locale",
    "title", "image", "location", "properties",
}  # fmt: skip
IDENTIFIERS = ("email", "phone_number", "external_id")
L_LIMITS = (RateLimit(75, 1.0), RateLimit(750, 60.0))  # burst 75/s, steady 750/m
M_LIMITS = (RateLimit(10, 1.0), RateLimit(150, 60.0))  # burst 10/s, steady 150/m


def _error(status: int, code: str, title: str, detail: str, pointer: str = "/data", **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title, "detail": detail,
            "source": {"pointer": pointer}, **extra}  # fmt: skip


def _errors(status: int, *errors: dict[str, Any], **headers: str) -> FakeResponse:
    return FakeResponse(
        status, FakeResponse.json(status, {"errors": list(errors)}).body, {"Content-Type": JSONAPI, **headers}
    )


def _invalid(detail: str, pointer: str = "/data") -> Reject:
    return Reject(_errors(400, _error(400, "invalid", "Invalid input.", detail, pointer)))


def _not_found(detail: str, pointer: str = "/data") -> FakeResponse:
    return _errors(404, _error(404, "not_found", "Not found.", detail, pointer))


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _document(status: int, data: Any) -> FakeResponse:
    return FakeResponse(status, FakeResponse.json(status, {"data": data}).body, {"Content-Type": JSONAPI})


class KlaviyoFake(BulkVendor):
    name = "klaviyo"
    ROUTE_LIMITS = (
        RouteLimit("POST", "/api/profile-import/?", L_LIMITS),
        RouteLimit("POST", "/api/profile-subscription-bulk-(create|delete)-jobs/?", L_LIMITS),
        RouteLimit("POST", "/api/profile-bulk-import-jobs/?", M_LIMITS),
        RouteLimit("GET", "/api/profile-bulk-import-jobs/.*", M_LIMITS),
    )

    def __init__(
        self,
        api_key: str = "pk_test",
        lists: list[str] | None = None,
        *,
        timing: JobTiming | None = None,
        documented_limits: bool = False,
    ) -> None:
        super().__init__(timing=timing, documented_limits=documented_limits)
        self.api_key = api_key
        self.lists: dict[str, str] = {list_id: f"list {list_id}" for list_id in lists or []}
        self.profiles: dict[str, dict[str, Any]] = {}  # by Klaviyo id
        self.dropped: list[dict[str, str]] = []  # subscription-job items that failed (Klaviyo reports none)

    # -- setup and inspection ---------------------------------------------------------------

    def _configure(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key", self.api_key)
        for list_id in settings.get("lists", []):
            self.lists.setdefault(str(list_id), f"list {list_id}")

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key = str(settings["api_key"])
        if settings.get("list_id"):
            self.lists.setdefault(str(settings["list_id"]), "Newsletter")

    def _state(self) -> dict[str, Any]:
        def key(p: dict[str, Any]) -> str:
            return str(p.get("email") or p.get("external_id") or p.get("phone_number"))

        view = {
            key(p): {**{k: v for k, v in p.items() if k != "id"}, "lists": sorted(p["lists"])}
            for p in self.profiles.values()
        }
        return {"profiles": dict(sorted(view.items()))}

    def snapshot(self) -> dict[str, Any]:
        jobs = {job.id: self._job_view(job)["attributes"] for job in self.jobs.values() if job.kind == "import"}
        return {**self.contact_state(), "import_jobs": jobs, "dropped": list(self.dropped)}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [k, p.get("external_id") or "", " ".join(filter(None, [p.get("first_name"), p.get("last_name")])),
             ", ".join(p["lists"]), p["consent"], p.get("properties", {})]
            for k, p in self.contact_state()["profiles"].items()
        ]  # fmt: skip
        return "Klaviyo profiles", ["profile", "external_id", "name", "lists", "email consent", "properties"], rows

    # -- protocol ------------------------------------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:
        return request.headers.get("authorization") == f"Klaviyo-API-Key {self.api_key}"

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:
        detail = "Missing or invalid private key."
        return _errors(401, _error(401, "not_authenticated", "Authentication credentials were not provided.", detail))

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        seconds = max(1, round(limit.window or 1.0))
        detail = f"Request was throttled. Expected available in {seconds} second{'s' if seconds > 1 else ''}."
        # On a 429 the RateLimit-* headers give way to Retry-After.
        return _errors(429, _error(429, "throttled", "Request was throttled.", detail), **{"Retry-After": str(seconds)})

    def _route(self, request: FakeRequest) -> FakeResponse:
        revision = request.headers.get("revision", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.pre)?", revision):
            raise _invalid("A valid `revision` header (YYYY-MM-DD) is required.", "/headers/revision")
        path, method = request.path.rstrip("/"), request.method
        if path == "/api/accounts" and method == "GET":
            return _document(200, [{"type": "account", "id": "AbC123", "attributes": {"test_account": False}}])
        found = re.fullmatch(r"/api/lists/([^/]+)", path)
        if found and method == "GET":
            list_id = found.group(1)
            if list_id not in self.lists:
                return _not_found(f"A list with id {list_id} does not exist.")
            return _document(200, {"type": "list", "id": list_id, "attributes": {"name": self.lists[list_id]}})
        if path == "/api/profile-import" and method == "POST":
            return self._profile_import(request)
        found = re.fullmatch(r"/api/profile-subscription-bulk-(create|delete)-jobs", path)
        if found and method == "POST":
            return self._subscription_job(request, subscribe=found.group(1) == "create")
        if path == "/api/profile-bulk-import-jobs" and method == "POST":
            return self._bulk_import(request)
        found = re.fullmatch(r"/api/profile-bulk-import-jobs/([^/]+)(/import-errors)?", path)
        if found and method == "GET":
            job = self.jobs.get(found.group(1))
            if job is None or job.kind != "import":
                return _not_found(f"A job with id {found.group(1)} does not exist.")
            if found.group(2):
                return self._import_errors(job)
            return _document(200, self._job_view(self.poll(job)))
        return _not_found(f"No route for {method} {request.path}")

    def _resource(self, request: FakeRequest, kind: str, limit: int) -> dict[str, Any]:
        """``data`` of a JSON:API document of type ``kind`` (``attributes`` required)."""
        if len(request.body) > limit:
            raise Reject(_errors(413, _error(413, "request_too_large", "Request entity too large.",
                                             f"The payload is larger than {limit} bytes.")))  # fmt: skip
        body = self.json_body(request, lambda why: _errors(400, _error(400, "parse_error", "Malformed data.", why)))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise _invalid("The request body must be a JSON:API document with `data`.")
        if data.get("type") != kind:
            raise Reject(
                _errors(409, _error(409, "conflict", "Conflict.", f"The resource type must be '{kind}'.", "/data/type"))
            )
        if not isinstance(data.get("attributes"), dict):
            raise _invalid("`attributes` is required.", "/data/attributes")
        return data

    # -- profiles ------------------------------------------------------------------------------

    def _check_profile(self, attributes: dict[str, Any], pointer: str) -> None:
        unknown = sorted(set(attributes) - PROFILE_FIELDS)
        if unknown:
            raise _invalid(
                f"'{unknown[0]}' is not a valid field for the resource 'profile'.", f"{pointer}/{unknown[0]}"
            )
        if not any(attributes.get(name) for name in IDENTIFIERS):
            raise _invalid("One of `email`, `phone_number` or `external_id` is required.", pointer)
        email = attributes.get("email")
        if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
            raise _invalid("Invalid email address", f"{pointer}/email")
        if attributes.get("properties") is not None and not isinstance(attributes["properties"], dict):
            raise _invalid("`properties` must be an object.", f"{pointer}/properties")

    def _find(self, attributes: dict[str, Any]) -> dict[str, Any] | None:
        """The one profile the identifiers name; two different ones raise a 409 ``duplicate_profile``."""
        matches = []
        for name in IDENTIFIERS:
            value = attributes.get(name)
            value = value.lower() if name == "email" and isinstance(value, str) else value
            found = next((p for p in self.profiles.values() if value and p.get(name) == value), None)
            if found is not None and found not in matches:
                matches.append(found)
        if len(matches) > 1:
            detail = "A profile already exists with one of these identifiers."
            raise Reject(_errors(409, _error(409, "duplicate_profile", "Conflict.", detail, "/data/attributes",
                                             meta={"duplicate_profile_id": matches[1]["id"]})))  # fmt: skip
        return matches[0] if matches else None

    def _upsert(self, attributes: dict[str, Any], *, null_clears: bool) -> tuple[dict[str, Any], bool]:
        profile = self._find(attributes)
        created = profile is None
        if profile is None:
            profile_id = uuid.uuid4().hex[:26].upper()
            profile = self.profiles[profile_id] = {
                "id": profile_id,
                "lists": [],
                "consent": "NEVER_SUBSCRIBED",
                "properties": {},
            }
        for name, value in attributes.items():
            if name == "properties":
                for prop, prop_value in (value or {}).items():
                    if prop_value is not None:
                        profile["properties"][prop] = prop_value
                    elif null_clears:
                        profile["properties"].pop(prop, None)
            elif value is not None:
                profile[name] = value.lower() if name == "email" else value
            elif null_clears:
                profile.pop(name, None)
        return profile, created

    def _profile_import(self, request: FakeRequest) -> FakeResponse:
        data = self._resource(request, "profile", MAX_PROFILE_BYTES)
        attributes = data["attributes"]
        self._check_profile(attributes, "/data/attributes")
        injected = self.item_fault(attributes)
        if injected is not None:
            raise _invalid(injected or "The profile could not be saved.", "/data/attributes")
        profile, created = self._upsert(attributes, null_clears=True)
        return _document(201 if created else 200, _profile_view(profile))

    # -- subscription jobs -----------------------------------------------------------------------

    def _subscription_job(self, request: FakeRequest, *, subscribe: bool) -> FakeResponse:
        kind = f"profile-subscription-bulk-{'create' if subscribe else 'delete'}-job"
        data = self._resource(request, kind, MAX_IMPORT_BYTES)
        items = _dig(data, "attributes", "profiles", "data")
        if not isinstance(items, list) or not items:
            raise _invalid("`profiles.data` must be a non-empty array.", "/data/attributes/profiles/data")
        most = MAX_SUBSCRIBE if subscribe else MAX_UNSUBSCRIBE
        if len(items) > most:
            raise _invalid(f"At most {most} profiles may be submitted.", "/data/attributes/profiles/data")
        wanted = "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"
        for index, item in enumerate(items):
            pointer = f"/data/attributes/profiles/data/{index}/attributes"
            attributes = item.get("attributes") if isinstance(item, dict) else None
            if not isinstance(attributes, dict) or not (attributes.get("email") or attributes.get("phone_number")):
                raise _invalid("Each profile needs an `email` or a `phone_number`.", pointer)
            if attributes.get("email") is not None and not EMAIL.match(str(attributes["email"])):
                raise _invalid("Invalid email address", f"{pointer}/email")
            if _dig(attributes, "subscriptions", "email", "marketing", "consent") != wanted:
                raise _invalid(
                    f"Email marketing consent must be {wanted}.", f"{pointer}/subscriptions/email/marketing/consent"
                )
        list_id = _dig(data, "relationships", "list", "data", "id")
        if list_id is not None and list_id not in self.lists:
            return _not_found(f"A list with id {list_id} does not exist.", "/data/relationships/list")
        keys = [str(item["attributes"].get("email") or item["attributes"].get("phone_number")) for item in items]
        self.start_job(kind, keys, lambda job: self._apply_subscriptions(job, items, list_id, wanted))
        return FakeResponse(202, b"", {"Content-Type": JSONAPI})

    def _apply_subscriptions(
        self, job: Job, items: list[dict[str, Any]], list_id: str | None, consent: str
    ) -> list[ItemError]:
        errors = []
        for index, item in enumerate(items):
            attributes = {k: item["attributes"][k] for k in ("email", "phone_number") if item["attributes"].get(k)}
            injected = self.item_fault(item)
            if injected is not None:
                errors.append(ItemError(index, job.keys[index], injected or "the profile could not be changed"))
                continue
            try:
                profile, _created = self._upsert(attributes, null_clears=False)
            except Reject:
                errors.append(ItemError(index, job.keys[index], "duplicate profile"))
                continue
            profile["consent"] = consent  # subscribing also lifts an unsubscribe suppression
            if list_id is not None and consent == "SUBSCRIBED" and list_id not in profile["lists"]:
                profile["lists"].append(list_id)
            elif list_id is not None and consent == "UNSUBSCRIBED" and list_id in profile["lists"]:
                profile["lists"].remove(list_id)
        self.dropped += [{"job": job.kind, "profile": e.key, "reason": e.message} for e in errors]
        return errors

    # -- bulk import jobs ------------------------------------------------------------------------

    def _bulk_import(self, request: FakeRequest) -> FakeResponse:
        data = self._resource(request, "profile-bulk-import-job", MAX_IMPORT_BYTES)
        items = _dig(data, "attributes", "profiles", "data")
        if not isinstance(items, list) or not items:
            raise _invalid("`profiles.data` must be a non-empty array.", "/data/attributes/profiles/data")
        if len(items) > MAX_IMPORT_PROFILES:
            raise _invalid(
                f"At most {MAX_IMPORT_PROFILES} profiles may be imported per job.", "/data/attributes/profiles/data"
            )
        lists = [_dig(x, "id") for x in _dig(data, "relationships", "lists", "data") or []]
        missing = [x for x in lists if x not in self.lists]
        if missing:
            return _not_found(f"A list with id {missing[0]} does not exist.", "/data/relationships/lists")
        keys = [str(((item or {}).get("attributes") or {}).get("email") or index) for index, item in enumerate(items)]
        job = self.start_job("import", keys, lambda job: self._apply_import(items, lists), job_id=uuid.uuid4().hex)
        job.meta.update(lists=lists, items=items)
        return _document(202, self._job_view(job))

    def _apply_import(self, items: list[Any], lists: list[str]) -> list[ItemError]:
        errors = []
        for index, item in enumerate(items):
            pointer = f"/data/attributes/profiles/data/{index}/attributes"
            attributes = item.get("attributes") if isinstance(item, dict) else None
            key = str((attributes or {}).get("email") or index)
            try:
                if not isinstance(item, dict) or item.get("type") != "profile" or not isinstance(attributes, dict):
                    raise _invalid("Each item must be a profile resource with attributes.", pointer)
                if json_size(item) > MAX_PROFILE_BYTES:
                    raise _invalid(f"A profile may be at most {MAX_PROFILE_BYTES} bytes.", pointer)
                self._check_profile(attributes, pointer)
                injected = self.item_fault(item)
                if injected is not None:
                    raise _invalid(injected or "The profile could not be imported.", pointer)
                profile, _created = self._upsert(attributes, null_clears=False)  # null does not clear here
            except Reject as rejection:
                problem = json.loads(rejection.response.body)["errors"][0]
                errors.append(ItemError(index, key, problem["detail"], problem["source"]["pointer"]))
                continue
            profile["lists"] += [x for x in lists if x not in profile["lists"]]
        return errors

    def job_status(self, job: Job) -> str:
        if not job.done:
            return self.running_state(job, ("queued", "processing"))
        return "cancelled" if job.failure is not None else "complete"

    def _job_view(self, job: Job) -> dict[str, Any]:
        failed = len(job.errors) if job.done else 0
        attributes = {
            "status": self.job_status(job),
            "created_at": iso(job.created),
            "total_count": job.total,
            "completed_count": job.total - failed if job.done else 0,
            "failed_count": failed,
            "completed_at": iso(job.finished) if job.finished is not None else None,
            "expires_at": iso(job.created + 7 * 86400),
            "started_at": iso(job.created) if job.polls or job.done else None,
        }
        lists = [{"type": "list", "id": x} for x in job.meta.get("lists", [])]
        return {
            "type": "profile-bulk-import-job",
            "id": job.id,
            "attributes": attributes,
            "relationships": {"lists": {"data": lists}},
            "links": {"self": f"/api/profile-bulk-import-jobs/{job.id}/"},
        }

    def _import_errors(self, job: Job) -> FakeResponse:
        items = job.meta.get("items", [])
        data = [
            {"type": "import-error", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job.id}/{e.index}")),
             "attributes": {"code": "invalid", "title": "Invalid input.", "detail": e.message,
                            "source": {"pointer": e.field or f"/data/attributes/profiles/data/{e.index}"},
                            "original_payload": items[e.index] if e.index < len(items) else None}}
            for e in job.errors
        ]  # fmt: skip
        body = {
            "data": data,
            "links": {"self": f"/api/profile-bulk-import-jobs/{job.id}/import-errors/", "next": None, "prev": None},
        }
        return FakeResponse(200, FakeResponse.json(200, body).body, {"Content-Type": JSONAPI})


def _profile_view(profile: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in profile.items() if k not in ("id", "lists", "consent")}
    attributes["subscriptions"] = {"email": {"marketing": {"consent": profile["consent"]}}}
    return {
        "type": "profile",
        "id": profile["id"],
        "attributes": attributes,
        "links": {"self": f"/api/profiles/{profile['id']}/"},
    }

"""A stateful fake of Customer.io's Track API (facts: fakes/README.md#customerio).

- v1: ``PUT /api/v1/customers/{id}`` adds or updates a person (attributes merge; an
  ``anonymous_id`` attribute merges that visitor's anonymous events into the person);
  ``POST /api/v1/customers/{id}/events`` and ``POST /api/v1/events`` (anonymous) record events.
- v2: ``POST /api/v2/batch`` applies many person operations (``identify``, ``event``, ``page``,
  ``screen``, ``delete``, ``suppress``, ``unsuppress``) in order: 200 when all were taken,
  207 ``{"errors": [{batch_index, reason, field, message}]}`` naming those that were not.
  A request is at most 500 KB, each operation at most 32 KB. ``POST /api/v2/entity`` takes one.
Auth is HTTP Basic ``site_id:api_key``; an invalid request is a 400 ``{"meta": {"error": ...}}``
with the messages Customer.io documents. The region (US/EU host) is hidden by a redirect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .bulk import BulkVendor, Reject, RouteLimit, json_size
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["CustomerIOFake"]

MAX_BATCH_BYTES = 500 * 1024
MAX_ENTITY_BYTES = 32 * 1024
MAX_ATTRIBUTES, MAX_NAME_BYTES, MAX_VALUE_BYTES = 300, 150, 1000
MAX_EVENT_NAME_BYTES, MAX_EVENT_DATA_BYTES = 100, 100_000
EVENT_TYPES = {"event", "page", "screen"}
V2_ACTIONS = {"identify", "event", "page", "screen", "delete", "suppress", "unsuppress"}
IDENTIFIER_KINDS = ("id", "email", "cio_id")


def _meta_error(status: int, message: str) -> FakeResponse:
    return FakeResponse.json(status, {"meta": {"error": message}})


class _Invalid(Exception):
    """One operation Customer.io refuses: its reason (the documented message) and field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message, self.field = message, field


class CustomerIOFake(BulkVendor):
    name = "customerio"
    # "a fair-use limit of 100 requests per second" on the Track API, v1 and v2 (approx. per key).
    ROUTE_LIMITS = tuple(RouteLimit(m, r"/api/v[12]/.*", (RateLimit(100, 1.0),)) for m in ("PUT", "POST"))

    def __init__(
        self, site_id: str = "site-test", api_key: str = "cio-test", *, documented_limits: bool = False
    ) -> None:
        super().__init__(documented_limits=documented_limits)
        self.site_id, self.api_key = site_id, api_key
        self.region = "us"
        self.people: dict[str, dict[str, Any]] = {}
        self.suppressed: set[str] = set()
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.anonymous_events: dict[str, list[dict[str, Any]]] = {}

    # -- setup and inspection ---------------------------------------------------------------

    def _configure(self, settings: dict[str, Any]) -> None:
        self.site_id = settings.get("site_id", self.site_id)
        self.api_key = settings.get("api_key", self.api_key)
        self.region = settings.get("region", self.region)

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.site_id, self.api_key = str(settings["site_id"]), str(settings["api_key"])
        self.region = str(settings.get("region") or "us")

    def _state(self) -> dict[str, Any]:
        return {
            "people": {k: dict(v) for k, v in sorted(self.people.items())},
            "suppressed": sorted(self.suppressed),
            "events": {k: list(v) for k, v in sorted(self.events.items()) if v},
            "anonymous_events": {k: list(v) for k, v in sorted(self.anonymous_events.items()) if v},
        }

    def snapshot(self) -> dict[str, Any]:
        return self.contact_state()

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [who, attributes, ", ".join(e["name"] for e in self.events.get(who, []))]
            for who, attributes in sorted(self.people.items())
        ]
        rows += [
            [f"(anonymous) {who}", {}, ", ".join(e["name"] for e in events)]
            for who, events in self.anonymous_events.items()
        ]
        return "Customer.io people", ["person", "attributes", "events"], rows

    # -- protocol ------------------------------------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:
        return request.basic_credentials() == (self.site_id, self.api_key)

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:
        return _meta_error(401, "Unauthorized request")

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        return _meta_error(429, "rate limit exceeded")

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/"), request.method
        if path == "/api/v1/accounts/region" and method == "GET":
            return FakeResponse.json(200, {"region": self.region, "environment_id": 1})
        if path == "/api/v2/batch" and method == "POST":
            return self._batch(request)
        if path == "/api/v2/entity" and method == "POST":
            return self._entity(request)
        if path == "/api/v1/events" and method == "POST":
            return self._v1_event(request, None)
        found = re.fullmatch(r"/api/v1/customers/([^/]+)(/events)?", path)
        if found and method == "PUT" and not found.group(2):
            return self._v1_identify(request, found.group(1))
        if found and method == "POST" and found.group(2):
            return self._v1_event(request, found.group(1))
        if found and method == "DELETE" and not found.group(2):
            self._apply({"type": "person", "action": "delete", "identifiers": {"id": found.group(1)}})
            return FakeResponse.json(200, {})
        return _meta_error(404, f"no route for {method} {request.path}")

    def _object(self, request: FakeRequest) -> dict[str, Any]:
        body = self.json_body(request, lambda why: _meta_error(400, why))
        if not isinstance(body, dict):
            raise Reject(_meta_error(400, "the request body must be a JSON object"))
        return body

    def _refuse(self, problem: _Invalid) -> Reject:
        return Reject(_meta_error(400, problem.message))

    def _take(self, entity: dict[str, Any], *, v2: bool) -> None:
        """Check one operation (a 400 in Customer.io's words if it is refused), then apply it."""
        try:
            self._check(entity, v2=v2)
        except _Invalid as problem:
            raise self._refuse(problem) from None
        self._apply(entity)

    # -- v1 --------------------------------------------------------------------------------------

    def _v1_identify(self, request: FakeRequest, identifier: str) -> FakeResponse:
        attributes = self._object(request)
        entity = {"type": "person", "action": "identify", "identifiers": {"id": identifier}, "attributes": attributes}
        self._take(entity, v2=False)
        return FakeResponse.json(200, {})

    def _v1_event(self, request: FakeRequest, identifier: str | None) -> FakeResponse:
        body = self._object(request)
        kind = body.get("type", "event")
        if kind not in EVENT_TYPES:
            raise self._refuse(_Invalid("type must be one of event, page or screen", "type"))
        entity: dict[str, Any] = {
            "type": "person",
            "action": kind,
            "name": body.get("name"),
            "attributes": body.get("data", {}),
        }
        if "timestamp" in body:
            entity["timestamp"] = body["timestamp"]
        if identifier is not None:
            entity["identifiers"] = {"id": identifier}
        elif body.get("anonymous_id"):
            entity["anonymous_id"] = body["anonymous_id"]
        self._take(entity, v2=False)
        return FakeResponse.json(200, {})

    # -- v2 --------------------------------------------------------------------------------------

    def _batch(self, request: FakeRequest) -> FakeResponse:
        if len(request.body) > MAX_BATCH_BYTES:
            raise Reject(_meta_error(400, f"batch request must be smaller than {MAX_BATCH_BYTES // 1024}kb"))
        batch = self._object(request).get("batch")
        if not isinstance(batch, list):
            raise Reject(_meta_error(400, "batch must be an array of entities"))
        errors = []
        for index, entity in enumerate(batch):
            try:
                self._check(entity)
            except _Invalid as problem:
                errors.append(
                    {
                        "batch_index": index,
                        "reason": problem.message,
                        "field": problem.field,
                        "message": problem.message,
                    }
                )
                continue
            self._apply(entity)
        if errors:
            return FakeResponse.json(207, {"errors": errors})
        return FakeResponse(200)

    def _entity(self, request: FakeRequest) -> FakeResponse:
        self._take(self._object(request), v2=True)
        return FakeResponse(200)

    # -- validation and effects (v1 is expressed as v2 operations) -----------------------------

    def _check(self, entity: Any, *, v2: bool = True) -> None:
        if not isinstance(entity, dict):
            raise _Invalid("each entity must be an object")
        if v2 and json_size(entity) > MAX_ENTITY_BYTES:  # v2 only: v1 has its own per-field limits
            raise _Invalid(f"each request in a batch must be {MAX_ENTITY_BYTES // 1024}kb or smaller")
        if entity.get("type") != "person":
            raise _Invalid("type must be person (objects and deliveries are not kept by this fake)", "type")
        action = entity.get("action")
        if action not in V2_ACTIONS:
            raise _Invalid(f"action must be one of {', '.join(sorted(V2_ACTIONS))}", "action")
        identifiers = entity.get("identifiers")
        # v1 takes an event with neither a person nor an anonymous_id (it can only trigger campaigns)
        if identifiers is None and not (action in EVENT_TYPES and (entity.get("anonymous_id") or not v2)):
            raise _Invalid("id attribute must be present", "identifiers")
        if identifiers is not None:
            if not isinstance(identifiers, dict) or len([k for k in IDENTIFIER_KINDS if k in identifiers]) != 1:
                raise _Invalid("identifiers must hold exactly one of id, email or cio_id", "identifiers")
            value = next(identifiers[k] for k in IDENTIFIER_KINDS if k in identifiers)
            if not isinstance(value, str):
                raise _Invalid("id attribute must be a string value", "identifiers")
            if not value:
                raise _Invalid("id attribute cannot be an empty string", "identifiers")
        attributes = entity.get("attributes", {})
        if action in EVENT_TYPES:
            _check_event(entity.get("name"), attributes)
        elif action == "identify":
            _check_attributes(attributes)
        injected = self.item_fault(entity)
        if injected is not None:
            raise _Invalid(injected or "the operation could not be processed")

    def _apply(self, entity: dict[str, Any]) -> None:
        identifiers = entity.get("identifiers") or {}
        who = next((str(identifiers[k]) for k in IDENTIFIER_KINDS if k in identifiers), None)
        action, attributes = entity["action"], dict(entity.get("attributes") or {})
        if action == "identify" and who is not None:
            person = self.people.setdefault(who, {})
            person.update(attributes)
            anonymous = attributes.get("anonymous_id")
            if anonymous and anonymous in self.anonymous_events:  # the visitor's anonymous events join the person
                self.events.setdefault(who, []).extend(self.anonymous_events.pop(anonymous))
        elif action in EVENT_TYPES:
            event = {"name": entity["name"], "type": action, "data": attributes}
            if "timestamp" in entity:
                event["timestamp"] = entity["timestamp"]
            if who is not None:
                self.events.setdefault(who, []).append(event)
            else:
                self.anonymous_events.setdefault(str(entity.get("anonymous_id", "")), []).append(event)
        elif action == "delete" and who is not None:
            self.people.pop(who, None)
            self.events.pop(who, None)
        elif action in ("suppress", "unsuppress") and who is not None:
            (self.suppressed.add if action == "suppress" else self.suppressed.discard)(who)


def _check_attributes(attributes: Any) -> None:
    if not isinstance(attributes, dict):
        raise _Invalid("attributes must be an object", "attributes")
    if len(attributes) > MAX_ATTRIBUTES:
        raise _Invalid(f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request", "attributes")
    for name, value in attributes.items():
        if len(name.encode()) > MAX_NAME_BYTES:
            raise _Invalid(f"attribute name cannot be longer than {MAX_NAME_BYTES} bytes", "attributes")
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text.encode()) > MAX_VALUE_BYTES:
            raise _Invalid(
                f"value for attribute '{name}' cannot be longer than {MAX_VALUE_BYTES} bytes", f"attributes.{name}"
            )


def _check_event(name: Any, data: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise _Invalid("event name must not be blank", "name")
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise _Invalid(f"event name cannot be longer than {MAX_EVENT_NAME_BYTES} bytes", "name")
    if not isinstance(data, dict):
        raise _Invalid('event data must be a hash (e.g., send "data":{} instead of "data":"")', "data")
    if json_size(data) > MAX_EVENT_DATA_BYTES:
        raise _Invalid(f"event data cannot be longer than {MAX_EVENT_DATA_BYTES} bytes", "data")

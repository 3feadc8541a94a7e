"""A stateful fake of Meta's Conversions API (facts: fakes/README.md#facebook_capi).

``POST /{version}/{pixel_id}/events`` takes ``data`` (a JSON list of up to 1,000 server events)
and the ``access_token`` as form fields (or JSON, or the token in the query). One invalid event
rejects the whole request with a Graph API error (code 100); a wrong token is code 190; an event
older than 7 days, a website event without ``client_user_agent`` or ``event_source_url``, or
customer information that is not a SHA-256 hex digest are refused. Success answers
``{events_received, messages, fbtrace_id}``. Events are kept per pixel (test events apart), and
a repeated ``event_name`` + ``event_id`` within 48 hours is deduplicated.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from .bulk import BulkVendor, Reject
from .server import FakeRequest, FakeResponse, RateLimit

__all__ = ["FacebookCAPIFake"]

MAX_EVENTS = 1000
MAX_AGE = 7 * 86400
DEDUP_WINDOW = 48 * 3600
ACTION_SOURCES = {"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                  "business_messaging", "other"}  # fmt: skip
HASHED = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _graph_error(
    message: str, code: int, kind: str = "OAuthException", status: int = 400, **extra: Any
) -> FakeResponse:
    error = {"message": message, "type": kind, "code": code, **extra, "fbtrace_id": "A" + secrets.token_hex(10)}
    return FakeResponse.json(status, {"error": error})


def _invalid(user_msg: str, **extra: Any) -> Reject:
    return Reject(_graph_error("Invalid parameter", 100, error_subcode=2804003,  # approx. subcode
                               error_user_title="Invalid parameter", error_user_msg=user_msg, **extra))  # fmt: skip


class FacebookCAPIFake(BulkVendor):
    name = "facebook_capi"

    def __init__(self, access_token: str = "EAAB-test", pixels: list[str] | None = None) -> None:
        super().__init__()
        self.access_token = access_token
        self.pixels: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.deduplicated = 0
        for pixel in pixels or []:
            self.add_pixel(pixel)

    # -- setup and inspection ---------------------------------------------------------------

    def add_pixel(self, pixel_id: str) -> None:
        self.pixels.setdefault(str(pixel_id), {"events": [], "test_events": []})

    def _configure(self, settings: dict[str, Any]) -> None:
        self.access_token = settings.get("access_token", self.access_token)
        for pixel in settings.get("pixels", []):
            self.add_pixel(pixel)

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.access_token = str(settings["access_token"])
        self.add_pixel(str(settings["pixel_id"]))

    def _state(self) -> dict[str, Any]:
        return {
            pixel: {kind: sorted(events, key=_order) for kind, events in kept.items()}
            for pixel, kept in sorted(self.pixels.items())
        }

    def snapshot(self) -> dict[str, Any]:
        return {"pixels": self.contact_state(), "deduplicated": self.deduplicated}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [pixel, "test" if kind == "test_events" else "", e["event_name"], e["event_time"], e.get("event_id", ""),
             sorted(e.get("user_data", {})), e.get("custom_data", {})]
            for pixel, kept in sorted(self.pixels.items())
            for kind, events in kept.items()
            for e in events
        ]  # fmt: skip
        return (
            "Conversions API events",
            ["pixel", "test", "event", "time", "event_id", "user data", "custom data"],
            rows,
        )

    # -- protocol ------------------------------------------------------------------------------

    def credential(self, request: FakeRequest) -> str:
        return str(self._fields(request).get("access_token") or request.query.get("access_token", ""))

    def _authorized(self, request: FakeRequest) -> bool:
        return True  # the token is a parameter: checked in _route, after the path, as Graph does

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:  # pragma: no cover - never called
        return _graph_error("Invalid OAuth access token - Cannot parse access token", 190)

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        usage = json.dumps({"call_count": 100, "total_cputime": 0, "total_time": 0})
        response = _graph_error("(#4) Application request limit reached", 4, is_transient=True)
        response.headers["X-App-Usage"] = usage
        return response

    @staticmethod
    def _fields(request: FakeRequest) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                body = request.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        if ctype.startswith("multipart/"):
            return dict(request.form())
        return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))

    def _route(self, request: FakeRequest) -> FakeResponse:
        found = re.fullmatch(r"/(v\d+\.\d+)/([^/]+)/events/?", request.path)
        if not found or request.method != "POST":
            return _graph_error(f"Unknown path components: {request.path}", 2500)
        fields = self._fields(request)
        token = fields.get("access_token") or request.query.get("access_token")
        if not token:
            return _graph_error("An access token is required to request this resource.", 104)
        if token != self.access_token:
            return _graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        pixel = found.group(2)
        if pixel not in self.pixels:
            message = (f"Unsupported post request. Object with ID '{pixel}' does not exist, cannot be loaded due to "
                       "missing permissions, or does not support this operation.")  # fmt: skip
            return _graph_error(message, 100, "GraphMethodException", error_subcode=33)
        events = self._events(fields.get("data"))
        for index, event in enumerate(events):
            self._check(index, event)
        kept = self.pixels[pixel]["test_events" if fields.get("test_event_code") else "events"]
        for event in events:
            if self._duplicate(kept, event):
                self.deduplicated += 1
            else:
                kept.append(event)
        return FakeResponse.json(
            200, {"events_received": len(events), "messages": [], "fbtrace_id": "A" + secrets.token_hex(10)}
        )

    def _events(self, data: Any) -> list[dict[str, Any]]:
        if data is None or data == "":
            raise Reject(_graph_error("(#100) The parameter data is required", 100))
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise Reject(_graph_error("(#100) param data must be an array.", 100)) from None
        if not isinstance(data, list) or not data:
            raise Reject(_graph_error("(#100) param data must be an array.", 100))
        if len(data) > MAX_EVENTS:
            raise _invalid(f"You can send at most {MAX_EVENTS} events in one request; this one has {len(data)}.")
        return data

    def _check(self, index: int, event: Any) -> None:
        """One invalid event rejects the whole request, naming it (``data/i/...``)."""
        at = f"data/{index}"
        if not isinstance(event, dict):
            raise _invalid(f"{at}: each event must be an object")
        if not isinstance(event.get("event_name"), str) or not event["event_name"]:
            raise _invalid(f"{at}/event_name: the parameter event_name is required")
        event_time = event.get("event_time")
        if not isinstance(event_time, int) or isinstance(event_time, bool):
            raise _invalid(
                f"{at}/event_time: the parameter event_time is required and must be a unix timestamp in seconds"
            )
        if self.clock() - event_time > MAX_AGE:
            raise _invalid(f"{at}/event_time: the timestamp for this event is more than 7 days in the past")
        source = event.get("action_source")
        if source not in ACTION_SOURCES:
            known = ", ".join(sorted(ACTION_SOURCES))
            raise _invalid(f"{at}/action_source: the parameter action_source is required and must be one of {known}")
        user_data = event.get("user_data")
        if not isinstance(user_data, dict) or not user_data:
            raise _invalid(f"{at}/user_data: the parameter user_data is required and may not be empty")
        for key in HASHED:
            values = user_data.get(key)
            listed = values if isinstance(values, list) else [] if values is None else [values]
            for position, value in enumerate(listed):
                if not isinstance(value, str) or not SHA256.match(value):
                    raise _invalid(
                        f"{at}/user_data/{key}/{position}: customer information must be the SHA-256 hex digest "
                        "of the normalised value, never the plain value"
                    )
        if source == "website":
            for name, where in (("client_user_agent", "user_data/"), ("event_source_url", "")):
                value = (user_data if where else event).get(name)
                if not isinstance(value, str) or not value:
                    raise _invalid(f"{at}/{where}{name}: website events require {name}")
        custom = event.get("custom_data")
        if custom is not None:
            if not isinstance(custom, dict):
                raise _invalid(f"{at}/custom_data: custom_data must be an object")
            if "value" in custom and (
                not isinstance(custom["value"], (int, float)) or isinstance(custom["value"], bool)
            ):
                raise _invalid(f"{at}/custom_data/value: value must be a number")
            if "currency" in custom and not re.fullmatch(r"[A-Za-z]{3}", str(custom["currency"])):
                raise _invalid(f"{at}/custom_data/currency: currency must be an ISO 4217 code")
        injected = self.item_fault(event)
        if injected is not None:
            raise _invalid(f"{at}: {injected or 'the event was refused'}")

    def _duplicate(self, kept: list[dict[str, Any]], event: dict[str, Any]) -> bool:
        if not event.get("event_id"):
            return False
        return any(
            seen.get("event_id") == event["event_id"]
            and seen["event_name"] == event["event_name"]
            and abs(seen["event_time"] - event["event_time"]) <= DEDUP_WINDOW
            for seen in kept
        )


def _order(event: dict[str, Any]) -> tuple[int, str, str]:
    return event["event_time"], event["event_name"], str(event.get("event_id", ""))

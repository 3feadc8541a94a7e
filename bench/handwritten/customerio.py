"""Customer.io, by hand: identify a known person, then post their event; anonymous events by anonymousId."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from relay import Request

from .base import (
    JSON,
    Drop,
    Integration,
    Outcome,
    Path,
    Send,
    basic_auth,
    json_request,
    keep,
    path_segment,
    pick,
    schema_check,
    valid_email,
)
from .fields import (
    ANONYMOUS_ID,
    COMPANY,
    EMAIL,
    FIRST,
    LAST,
    NAME,
    PLAN,
    USER_ID,
    email_of,
    event_mapping,
    subscription,
)
from .mailchimp import PHONE, TIMESTAMP

__all__ = ["CustomerIo", "unix_seconds"]

_CREDENTIALS = frozenset({"Authorization"})
CREATED_AT: tuple[Path, ...] = (
    ("traits", "createdAt"),
    ("traits", "created_at"),
    ("context", "traits", "createdAt"),
    ("context", "traits", "created_at"),
)
PAGE_URL: tuple[Path, ...] = (("context", "page", "url"), ("properties", "url"))
_NUMERIC = re.compile(r"[+-]?\d+(\.\d+)?")


def unix_seconds(value: Any) -> int | None:
    """Whole unix seconds from ISO-8601 text or a timestamp (milliseconds told apart by size)."""
    if value is None:
        return None
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.floor(value / 1000 if abs(value) >= 1e11 else value)
    instant = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=datetime.UTC)
    return math.floor(instant.timestamp())


class CustomerIo(Integration):
    name = "customerio"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        host = "track-eu" if settings.get("region") == "eu" else "track"
        self.api = f"https://{host}.customer.io/api/v1/"
        self.headers = {"Content-Type": JSON, "Authorization": basic_auth(settings["site_id"], settings["api_key"])}
        self.by_email = settings.get("identifier") == "email"
        self.check_person = schema_check("customerio/identify.schema.json")
        self.check_event = schema_check("customerio/event.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        mapping = event_mapping(event)
        if mapping == "unmapped":
            return Drop("unmapped")
        email = email_of(event, EMAIL)
        anonymous_id = pick(event, ANONYMOUS_ID)
        person = (email if valid_email(email) else None) if self.by_email else pick(event, USER_ID)
        if person is None and anonymous_id is None:
            return Drop("nobody")
        if event.get("type") == "identify" and person is None:
            return Drop("anonymous_identify")
        if email is not None and not valid_email(email):
            return Drop("invalid_email")
        subscribed = subscription(event, mapping)
        unsubscribed = None if subscribed is None else not subscribed
        requests: tuple[Request, ...] = ()
        if person is not None:
            attributes: dict[str, Any] = {}
            keep(attributes, "email", email)
            keep(attributes, "anonymous_id", anonymous_id)
            if mapping == "identified":
                keep(attributes, "created_at", unix_seconds(pick(event, CREATED_AT)))
                keep(attributes, "first_name", pick(event, FIRST))
                keep(attributes, "last_name", pick(event, LAST))
                keep(attributes, "name", pick(event, NAME))
                keep(attributes, "phone", pick(event, PHONE))
                keep(attributes, "company", pick(event, COMPANY))
                keep(attributes, "plan", pick(event, PLAN))
            keep(attributes, "unsubscribed", unsubscribed)
            self.check_person(attributes)
            requests += (self._request("person", "PUT", f"{self.api}customers/{path_segment(person)}", attributes),)
        if mapping != "identified":
            properties = event.get("properties")
            posted: dict[str, Any] = {} if person is not None else {"anonymous_id": anonymous_id}
            keep(posted, "name", pick(event, PAGE_URL) if mapping == "page" else event.get("event"))
            keep(posted, "type", "page" if mapping == "page" else None)
            posted["data"] = properties if isinstance(properties, Mapping) else {}
            keep(posted, "timestamp", unix_seconds(pick(event, TIMESTAMP)))
            self.check_event(posted)
            if person is not None:
                url, step = f"{self.api}customers/{path_segment(person)}/events", "event"
            else:
                url, step = f"{self.api}events", "anonymous_event"
            requests += (self._request(step, "POST", url, posted, role="track"),)
        if not requests:
            return Drop("requests")  # an Identified event from someone with no userId: nothing applies
        return Send(requests)

    def _request(self, step: str, method: str, url: str, body: dict[str, Any], role: str = "write") -> Request:
        return json_request(step, method, url, self.headers, body, _CREDENTIALS, role)

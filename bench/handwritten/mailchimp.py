"""Mailchimp, by hand: upsert the member (addressed by the MD5 of the email), then post the event."""

from __future__ import annotations

import datetime
import hashlib
import re
import unicodedata
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
    pick,
    schema_check,
    to_json,
    valid_email,
)
from .fields import EMAIL, FIRST, LAST, NAME, email_of, event_mapping, subscription

__all__ = ["Mailchimp", "iso8601", "string_values"]

_CREDENTIALS = frozenset({"Authorization"})
PHONE: tuple[Path, ...] = (("traits", "phone"), ("context", "traits", "phone"), ("properties", "phone"))
TIMESTAMP: tuple[Path, ...] = (("timestamp",), ("originalTimestamp",))
_STATUS = {True: "subscribed", False: "unsubscribed", None: None}


def _slug(value: Any, length: int) -> str | None:
    if value is None:
        return None
    folded = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:length].rstrip("_")


def string_values(value: Mapping[str, Any]) -> dict[str, str]:
    """Every value as text (JSON for lists and objects, true/false), nulls left out."""
    out = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, str):
            out[str(key)] = item
        elif isinstance(item, (dict, list)):
            out[str(key)] = to_json(item)
        elif isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        else:
            out[str(key)] = str(item)
    return out


def iso8601(value: Any) -> str | None:
    """ISO-8601 in UTC with Z, milliseconds kept when there are any."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        instant = datetime.datetime.fromtimestamp(value / 1000 if abs(value) >= 1e11 else value, datetime.UTC)
    else:
        instant = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=datetime.UTC)
    instant = instant.astimezone(datetime.UTC)
    text = instant.isoformat(timespec="milliseconds" if instant.microsecond else "seconds")
    return text.removesuffix("+00:00") + "Z"


class Mailchimp(Integration):
    name = "mailchimp"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        dc = settings.get("dc") or str(settings["api_key"]).rpartition("-")[2]
        self.members = f"https://{dc}.api.mailchimp.com/3.0/lists/{settings['list_id']}/members/"
        self.headers = {"Content-Type": JSON, "Authorization": basic_auth("relay", str(settings["api_key"]))}
        self.status_if_new = settings.get("status_if_new") or "transactional"
        self.syncing = settings.get("trigger_automations") is False
        self.check_member = schema_check("mailchimp/member.schema.json")
        self.check_event = schema_check("mailchimp/event.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        mapping = event_mapping(event)
        if mapping in ("page", "unmapped"):
            return Drop(mapping)
        email = email_of(event, EMAIL)
        if email is None:
            return Drop("no_email")
        if not valid_email(email):
            return Drop("invalid_email")
        subscribed = subscription(event, mapping)
        name = _slug(event.get("event"), 30)
        if mapping == "tracked" and (name is None or len(name) < 2):
            return Drop("event_name_unusable")
        status = _STATUS[subscribed]
        url = self.members + hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
        body: dict[str, Any] = {"email_address": email, "status_if_new": status or self.status_if_new}
        keep(body, "status", status)
        if mapping == "identified":
            full = pick(event, NAME)
            merge: dict[str, Any] = {}
            keep(merge, "FNAME", pick(event, FIRST) or (full.split(" ")[0] if full else None))
            keep(merge, "LNAME", pick(event, LAST) or (full.split(" ", 1)[1] if full and " " in full else None))
            keep(merge, "PHONE", pick(event, PHONE))
            if merge:
                body["merge_fields"] = merge
        self.check_member(body)
        requests: tuple[Request, ...] = (self._request("member", "PUT", url, body),)
        if mapping == "tracked":
            posted: dict[str, Any] = {"name": name}
            properties = event.get("properties")
            if isinstance(properties, Mapping) and properties:
                posted["properties"] = string_values(properties)
            keep(posted, "occurred_at", iso8601(pick(event, TIMESTAMP)))
            if self.syncing:
                posted["is_syncing"] = True
            self.check_event(posted)
            requests += (self._request("event", "POST", url + "/events", posted, role="track"),)
        return Send(requests)

    def _request(self, step: str, method: str, url: str, body: dict[str, Any], role: str = "write") -> Request:
        return json_request(step, method, url, self.headers, body, _CREDENTIALS, role)

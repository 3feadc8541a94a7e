"""A generic webhook, by hand: a canonical body (or the event as is), Bearer or Basic auth, and an
HMAC-SHA256 signature over the exact bytes sent."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from relay import Request

from .base import JSON, Drop, Integration, Outcome, Send, basic_auth, json_content, keep, pick, schema_check, walk
from .fields import ANONYMOUS_ID, EMAIL, USER_ID, email_of

__all__ = ["Webhook"]

_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_MESSAGE_ID = (("messageId",), ("message_id",))
_TIMESTAMP = (("timestamp",), ("sentAt",), ("sent_at",), ("receivedAt",))
_TRAITS = (("traits",), ("context", "traits"))
_CONSENT = ("context", "consent", "canonical")


class Webhook(Integration):
    name = "webhook"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.url = settings["url"]
        self.method = settings["method"]
        self.as_is = settings["payload"] == "event"
        self.purpose = settings.get("consent_purpose")
        self.headers = {"Content-Type": JSON, "User-Agent": "relay-webhook/1"}
        self.credentials: frozenset[str] = frozenset()
        self.authorization: str | None = None
        if settings.get("bearer_token") is not None:
            self.authorization = f"Bearer {settings['bearer_token']}"
        elif settings.get("basic_username") is not None:
            password = settings.get("basic_password") or ""
            self.authorization = basic_auth(settings["basic_username"], password)
        if self.authorization is not None:
            self.credentials = frozenset({"Authorization"})
        secret = settings.get("signing_secret")
        self.signing_key = None if secret is None else str(secret).encode()
        self.check = schema_check("webhook/event.schema.json" if self.as_is else "webhook/canonical.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        if event.get("type") not in _TYPES:
            return Drop("unmapped")
        consent = walk(event, _CONSENT)
        if self.purpose is not None and isinstance(consent, dict) and consent.get(self.purpose) is False:
            return Drop("consent_withdrawn")
        if self.as_is:
            body: dict[str, Any] = event
        else:
            body = {"type": event["type"]}
            keep(body, "event", event.get("event"))
            keep(body, "messageId", pick(event, _MESSAGE_ID))
            keep(body, "timestamp", pick(event, _TIMESTAMP))
            keep(body, "userId", pick(event, USER_ID))
            keep(body, "anonymousId", pick(event, ANONYMOUS_ID))
            keep(body, "email", email_of(event, EMAIL))
            keep(body, "traits", pick(event, _TRAITS))
            keep(body, "properties", event.get("properties"))
            keep(body, "consent", consent)
        self.check(body)
        content = json_content(body)
        headers = dict(self.headers)
        if self.signing_key is not None:
            timestamp = str(int(now * 1000))
            digest = hmac.new(self.signing_key, timestamp.encode() + b"." + content, hashlib.sha256).hexdigest()
            headers["X-Timestamp"] = timestamp
            headers["X-Signature"] = f"sha256={digest}"
        if self.authorization is not None:  # auth comes after the preset's own headers
            headers["Authorization"] = self.authorization
        request = Request(
            method=self.method,
            url=self.url,
            headers=headers,
            body=body,
            content=content,
            encoding="json",
            credential_headers=self.credentials,
            step="event_as_is" if self.as_is else "canonical",
        )
        return Send((request,))

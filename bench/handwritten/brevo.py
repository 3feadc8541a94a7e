"""Brevo contacts, by hand: one upsert whose emailBlacklisted follows consent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay import Request

from .base import (
    JSON,
    Drop,
    Integration,
    Outcome,
    Send,
    json_content,
    keep,
    number,
    pick,
    schema_check,
)
from .fields import ANONYMOUS_ID, FIRST, LAST, METHOD, PLAN, REVENUE, contact, subscription

__all__ = ["Brevo"]

_URL = "https://api.brevo.com/v3/contacts"
_CREDENTIALS = frozenset({"api-key"})


class Brevo(Integration):
    name = "brevo"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.api_key = str(settings["api_key"])
        self.check = schema_check("brevo/contact.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        found = contact(event)
        if isinstance(found, Drop):
            return found
        mapping, email = found
        subscribed = subscription(event, mapping)
        blacklisted = None if subscribed is None else not subscribed
        attributes: dict[str, Any] = {}
        keep(attributes, "FIRSTNAME", pick(event, FIRST))
        keep(attributes, "LASTNAME", pick(event, LAST))
        if mapping == "identified":
            keep(attributes, "PLAN", pick(event, PLAN))
        elif mapping == "signed_up":
            keep(attributes, "SIGNUP_METHOD", pick(event, METHOD))
        elif mapping == "order_completed":
            keep(attributes, "LAST_ORDER_VALUE", number(pick(event, REVENUE)))
        body: dict[str, Any] = {"email": email}
        keep(body, "ext_id", pick(event, ANONYMOUS_ID))
        if attributes:
            body["attributes"] = attributes
        body["listIds"] = [self.settings["list_id"]]
        body["updateEnabled"] = True
        keep(body, "emailBlacklisted", blacklisted)
        self.check(body)
        return Send(
            (
                Request(
                    method="POST",
                    url=_URL,
                    headers={"Content-Type": JSON, "accept": "application/json", "api-key": self.api_key},
                    body=body,
                    content=json_content(body),
                    encoding="json",
                    credential_headers=_CREDENTIALS,
                    step="contact",
                ),
            )
        )

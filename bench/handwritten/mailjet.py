"""Mailjet contact lists, by hand: one managecontact call whose Action follows consent."""

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
    basic_auth,
    json_content,
    keep,
    number,
    pick,
    schema_check,
    walk,
)
from .fields import (
    COMPANY,
    FIRST,
    LAST,
    METHOD,
    NAME,
    PLAN,
    REVENUE,
    contact,
    full_name,
    subscription,
)

__all__ = ["Mailjet"]

_CREDENTIALS = frozenset({"Authorization"})
_ACTIONS = {False: "unsub", True: "addforce", None: "addnoforce"}


class Mailjet(Integration):
    name = "mailjet"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.url = f"https://api.mailjet.com/v3/REST/contactslist/{settings['list_id']}/managecontact"
        self.authorization = basic_auth(settings["api_key"], settings["secret_key"])
        self.check = schema_check("mailjet/managecontact.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        found = contact(event)
        if isinstance(found, Drop):
            return found
        mapping, email = found
        action = _ACTIONS[subscription(event, mapping)]
        properties: dict[str, Any] = {}
        keep(properties, "first_name", pick(event, FIRST))
        keep(properties, "last_name", pick(event, LAST))
        if mapping == "signed_up":
            keep(properties, "signup_method", pick(event, METHOD))
        elif mapping == "identified":
            keep(properties, "company", pick(event, COMPANY))
            keep(properties, "plan", pick(event, PLAN))
        elif mapping == "order_completed":
            revenue = pick(event, REVENUE)
            keep(properties, "last_order_value", None if revenue is None else float(number(revenue)))
            currency = walk(event, ("properties", "currency"))
            keep(properties, "last_order_currency", None if currency is None else currency.upper())
        body: dict[str, Any] = {"Email": email}
        keep(body, "Name", full_name(event, NAME))
        body["Action"] = action
        if properties:
            body["Properties"] = properties
        self.check(body)
        return Send(
            (
                Request(
                    method="POST",
                    url=self.url,
                    headers={"Content-Type": JSON, "Authorization": self.authorization},
                    body=body,
                    content=json_content(body),
                    encoding="json",
                    credential_headers=_CREDENTIALS,
                    step="contact",
                ),
            )
        )

"""SendGrid Marketing contacts, by hand: an upsert, or the unsubscribe group when consent is withdrawn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay import Request

from .base import JSON, Drop, Integration, Outcome, Send, json_content, keep, pick, schema_check
from .fields import FIRST, LAST, PLAN, contact, subscription

__all__ = ["SendGrid"]

_CREDENTIALS = frozenset({"Authorization"})
_UNMAPPED = frozenset({"order_completed"})  # SendGrid contacts have no order fields


class SendGrid(Integration):
    name = "sendgrid"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        base = settings["base_url"]
        self.contacts_url = f"{base}/v3/marketing/contacts"
        self.suppressions_url = f"{base}/v3/asm/groups/{settings['unsubscribe_group_id']}/suppressions"
        self.authorization = f"Bearer {settings['api_key']}"
        self.plan_field = settings.get("plan_field_id")
        self.check_contacts = schema_check("sendgrid/contacts.schema.json")
        self.check_suppressions = schema_check("sendgrid/suppressions.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        found = contact(event, _UNMAPPED)
        if isinstance(found, Drop):
            return found
        mapping, email = found
        if subscription(event, mapping) is False:
            body: dict[str, Any] = {"recipient_emails": [email]}
            self.check_suppressions(body)
            return self._send("suppress", "POST", self.suppressions_url, body)
        member: dict[str, Any] = {"email": email}
        keep(member, "first_name", pick(event, FIRST))
        keep(member, "last_name", pick(event, LAST))
        plan = pick(event, PLAN)
        if mapping == "identified" and self.plan_field and plan:
            member["custom_fields"] = {self.plan_field: plan}
        body = {"list_ids": [self.settings["list_id"]], "contacts": [member]}
        self.check_contacts(body)
        return self._send("upsert", "PUT", self.contacts_url, body)

    def _send(self, step: str, method: str, url: str, body: dict[str, Any]) -> Send:
        request = Request(
            method=method,
            url=url,
            headers={"Content-Type": JSON, "Authorization": self.authorization},
            body=body,
            content=json_content(body),
            encoding="json",
            credential_headers=_CREDENTIALS,
            step=step,
        )
        return Send((request,))

"""Mailgun list members, by hand: read the member first, then upsert it with the merged vars."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay import Request

from .base import (
    FORM,
    Drop,
    Integration,
    Outcome,
    Send,
    basic_auth,
    form_content,
    keep,
    number,
    path_segment,
    pick,
    schema_check,
    to_json,
    valid_email,
    walk,
)
from .fields import ANONYMOUS_ID, COMPANY, CONSENT, EMAIL, FIRST, LAST, METHOD, NAME, PLAN, REVENUE, email_of, full_name

__all__ = ["Mailgun", "MemberPlan"]

_ORDER_ID = (("properties", "order_id"), ("properties", "orderId"))
_PAGE_URL = (("context", "page", "url"), ("properties", "url"))
_CREDENTIALS = frozenset({"Authorization"})


@dataclass(frozen=True, slots=True)
class MemberPlan:
    """What a send is built from: the member's fields before the lookup is read."""

    email: str
    name: str | None
    subscribed: bool | None
    vars: dict[str, Any]


class Mailgun(Integration):
    name = "mailgun"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.members_url = f"{settings['base_url']}/v3/lists/{path_segment(settings['list_address'])}/members"
        self.authorization = basic_auth("api", settings["api_key"])
        self.check = schema_check("mailgun/member.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        """The upsert as if the member did not exist yet, and the lookup to send before it."""
        plan = self.plan(event)
        if isinstance(plan, Drop):
            return plan
        return self.send(plan, None)

    def send(self, plan: MemberPlan, existing: Any) -> Send:
        """The GET of the member, then the upsert from what it answered."""
        return Send((self.lookup(plan), self.build(plan, existing)))

    def plan(self, event: Any) -> Drop | MemberPlan:
        kind, name = event.get("type"), event.get("event")
        if kind == "page":
            mapping = "page"
        elif kind == "track" and name == "Signed Up":
            mapping = "signed_up"
        elif kind == "identify" or (kind == "track" and name == "Identified"):
            mapping = "identified"
        elif kind == "track" and name == "Order Completed":
            mapping = "order_completed"
        else:
            return Drop("unmapped")
        email = email_of(event, EMAIL)
        if email is None:
            return Drop("anonymous_page_view" if kind == "page" else "no_email")
        if not valid_email(email):
            return Drop("invalid_email")
        variables: dict[str, Any] = {}
        anonymous_id = pick(event, ANONYMOUS_ID)
        if anonymous_id is not None:
            variables["anonymous_id"] = anonymous_id
        member_name = None
        if mapping == "page":
            keep(variables, "last_page_url", pick(event, _PAGE_URL))
        elif mapping == "signed_up":
            keep(variables, "signup_method", pick(event, METHOD))
        elif mapping == "identified":
            member_name = full_name(event, NAME)
            keep(variables, "first_name", pick(event, FIRST))
            keep(variables, "last_name", pick(event, LAST))
            keep(variables, "plan", pick(event, PLAN))
            keep(variables, "company", pick(event, COMPANY))
        else:
            order_id = pick(event, _ORDER_ID)
            keep(variables, "last_order_id", None if order_id is None else str(order_id))
            keep(variables, "last_order_revenue", number(pick(event, REVENUE)))
            currency = walk(event, ("properties", "currency"))
            keep(variables, "last_order_currency", None if currency is None else currency.upper())
        consent = walk(event, CONSENT)
        return MemberPlan(email, member_name, consent if isinstance(consent, bool) else None, variables)

    def lookup(self, plan: MemberPlan) -> Request:
        """GET the member, so the upsert keeps the vars earlier events stored (404: a new member)."""
        return Request(
            method="GET",
            url=f"{self.members_url}/{path_segment(plan.email)}",
            headers={"Authorization": self.authorization},
            body=None,
            content=b"",
            encoding="json",  # what relay records for a request without a body
            credential_headers=_CREDENTIALS,
            step="member",
            role="read",
        )

    def build(self, plan: MemberPlan, existing: Any) -> Request:
        """The upsert; ``existing`` is the lookup's parsed answer (None when there was none)."""
        member = existing["member"] if existing else None
        body = {"address": plan.email}
        if plan.name is not None:
            body["name"] = plan.name
        # Unknown consent repeats the stored member's status rather than rely on Mailgun keeping it.
        subscribed = plan.subscribed if plan.subscribed is not None or member is None else member["subscribed"]
        if subscribed is not None:
            body["subscribed"] = (
                ("true" if subscribed else "false") if isinstance(subscribed, bool) else str(subscribed)
            )
        body["upsert"] = "true"
        stored = member["vars"] if member else None
        body["vars"] = to_json({**stored, **plan.vars} if stored else plan.vars)
        self.check(body)
        return Request(
            method="POST",
            url=self.members_url,
            headers={"Content-Type": FORM, "Authorization": self.authorization},
            body=body,
            content=form_content(body),
            encoding="form",
            credential_headers=_CREDENTIALS,
            step="upsert",
        )

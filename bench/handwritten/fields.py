"""The event fields the bundled presets read, with their fallbacks, and the mapping they share."""

from __future__ import annotations

from typing import Any

from .base import Path, pick

__all__ = [
    "ANONYMOUS_ID",
    "COMPANY",
    "CONSENT",
    "EMAIL",
    "FIRST",
    "LAST",
    "METHOD",
    "NAME",
    "PLAN",
    "REVENUE",
    "USER_ID",
    "contact_mapping",
    "email_of",
    "full_name",
]

EMAIL: tuple[Path, ...] = (("traits", "email"), ("context", "traits", "email"), ("properties", "email"))
NAME: tuple[Path, ...] = (("traits", "name"), ("context", "traits", "name"), ("properties", "name"))
FIRST: tuple[Path, ...] = (
    ("traits", "first_name"),
    ("context", "traits", "first_name"),
    ("traits", "firstName"),
    ("context", "traits", "firstName"),
)
LAST: tuple[Path, ...] = (
    ("traits", "last_name"),
    ("context", "traits", "last_name"),
    ("traits", "lastName"),
    ("context", "traits", "lastName"),
)
COMPANY: tuple[Path, ...] = (("traits", "company"), ("context", "traits", "company"))
PLAN: tuple[Path, ...] = (("traits", "plan"), ("context", "traits", "plan"))
METHOD: tuple[Path, ...] = (("properties", "method"), ("properties", "signup_method"))
REVENUE: tuple[Path, ...] = (("properties", "revenue"), ("properties", "total"))
ANONYMOUS_ID: tuple[Path, ...] = (("anonymousId",), ("anonymous_id",))
USER_ID: tuple[Path, ...] = (("userId",), ("user_id",))
CONSENT: Path = ("context", "consent", "canonical", "marketing")

_CONTACT_EVENTS = {
    "Signed Up": "signed_up",
    "Order Completed": "order_completed",
    "Subscribed": "subscribed",
    "Unsubscribed": "unsubscribed",
}


def email_of(event: Any, paths: tuple[Path, ...]) -> Any:
    """The first email found, trimmed and lower-cased (a non-string is kept as it is)."""
    email = pick(event, paths)
    return email.strip().lower() if isinstance(email, str) else email


def full_name(event: Any, paths: tuple[Path, ...]) -> Any:
    """The name, else first and last name joined, else None."""
    name = pick(event, paths)
    if name:
        return name
    joined = " ".join(str(part) for part in (pick(event, FIRST), pick(event, LAST)) if part)
    return joined or None


def contact_mapping(event: Any) -> str | None:
    """The mapping of the contact presets (Mailjet, SendGrid, Brevo, Klaviyo), None if unmapped."""
    kind = event.get("type")
    if kind == "identify":
        return "identified"
    if kind == "track":
        name = event.get("event")
        return "identified" if name == "Identified" else _CONTACT_EVENTS.get(name)
    return None

"""The event fields the bundled presets read, with their fallbacks, and the mapping they share."""

from __future__ import annotations

from typing import Any

from .base import Drop, Path, pick, valid_email, walk

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
    "contact",
    "contact_mapping",
    "email_of",
    "event_mapping",
    "full_name",
    "subscription",
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


def contact(event: Any, unmapped: frozenset[str] = frozenset()) -> Drop | tuple[str, str]:
    """The contact presets' first steps: the mapping (a drop when there is none, or it is one of
    ``unmapped``), then the email (a drop when it is missing or not a valid address)."""
    mapping = contact_mapping(event)
    if mapping is None or mapping in unmapped:
        return Drop("unmapped")
    email = email_of(event, EMAIL)
    if email is None:
        return Drop("no_email")
    if not valid_email(email):
        return Drop("invalid_email")
    return mapping, email


def subscription(event: Any, mapping: str) -> bool | None:
    """The contact presets' consent rules, the first that applies wins: withdrawn consent or an
    Unsubscribed event unsubscribes (False), a Subscribed event or granted consent subscribes
    (True), and otherwise the contact's status is left as it is (None)."""
    consent = walk(event, CONSENT)
    if consent is False or mapping == "unsubscribed":
        return False
    if mapping == "subscribed" or consent is True:
        return True
    return None


def event_mapping(event: Any) -> str:
    """The mapping of the presets that take every track event (Mailchimp, Customer.io):
    Subscribed and Unsubscribed first, then identify or Identified, any other track, a page."""
    kind, name = event.get("type"), event.get("event")
    if kind == "track" and name in ("Subscribed", "Unsubscribed"):
        return str(name).lower()
    if kind == "identify" or (kind == "track" and name == "Identified"):
        return "identified"
    return {"track": "tracked", "page": "page"}.get(kind, "unmapped")

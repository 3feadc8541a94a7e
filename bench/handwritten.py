"""Hand-written Python for each bundled preset: the baseline the engine is measured against.

Each function does what a careful engineer would write by hand for one
destination: pick the fields, apply the rules, build and check the body, encode
it. It must produce byte-for-byte what the engine renders (the bench asserts it).
It shares the engine's cached email check, so both do the same work per event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from relay.expr.filters import is_valid_email

__all__ = ["HANDWRITTEN"]

Outcome = tuple[Any, ...]
_SAFE = "@:!$&'()*+,;=-._~"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _pick(event: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    for path in paths:
        value = _walk(event, path)
        if value is not None:
            return value
    return None


def _number(value: Any) -> Any:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("not finite")
        return number
    raise ValueError("not a number")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


EMAIL = (("traits", "email"), ("context", "traits", "email"), ("properties", "email"))
NAME = (("traits", "name"), ("context", "traits", "name"), ("properties", "name"))
FIRST = (
    ("traits", "first_name"),
    ("context", "traits", "first_name"),
    ("traits", "firstName"),
    ("context", "traits", "firstName"),
)
LAST = (
    ("traits", "last_name"),
    ("context", "traits", "last_name"),
    ("traits", "lastName"),
    ("context", "traits", "lastName"),
)
COMPANY = (("traits", "company"), ("context", "traits", "company"))
PLAN = (("traits", "plan"), ("context", "traits", "plan"))
CONSENT = ("context", "consent", "canonical", "marketing")
METHOD = (("properties", "method"), ("properties", "signup_method"))
REVENUE = (("properties", "revenue"), ("properties", "total"))


def _email(event: Any) -> Any:
    email = _pick(event, EMAIL)
    return email.strip().lower() if isinstance(email, str) else email


def _full_name(event: Any) -> Any:
    name = _pick(event, NAME)
    if name:
        return name
    joined = " ".join(str(part) for part in (_pick(event, FIRST), _pick(event, LAST)) if part)
    return joined or None


def _contact_mapping(event: Any) -> str | None:
    kind, name = event.get("type"), event.get("event")
    if kind == "identify" or (kind == "track" and name == "Identified"):
        return "identified"
    if kind == "track":
        return {
            "Signed Up": "signed_up",
            "Order Completed": "order_completed",
            "Subscribed": "subscribed",
            "Unsubscribed": "unsubscribed",
        }.get(name)
    return None


def mailgun(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    email = _email(event)
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
        return ("drop", "unmapped")
    if kind == "page" and email is None:
        return ("drop", "anonymous_page_view")
    if email is None:
        return ("drop", "no_email")
    if not is_valid_email(email):
        return ("drop", "invalid_email")
    consent = _walk(event, CONSENT)
    variables: dict[str, Any] = {}
    _set(variables, "anonymous_id", _pick(event, (("anonymousId",), ("anonymous_id",))))
    body: dict[str, Any] = {"address": email}
    if mapping == "page":
        _set(variables, "last_page_url", _pick(event, (("context", "page", "url"), ("properties", "url"))))
    elif mapping == "signed_up":
        _set(variables, "signup_method", _pick(event, METHOD))
    elif mapping == "identified":
        _set(body, "name", _full_name(event))
        for key, paths in (("first_name", FIRST), ("last_name", LAST), ("plan", PLAN), ("company", COMPANY)):
            _set(variables, key, _pick(event, paths))
    else:
        order_id = _pick(event, (("properties", "order_id"), ("properties", "orderId")))
        _set(variables, "last_order_id", None if order_id is None else str(order_id))
        _set(variables, "last_order_revenue", _number(_pick(event, REVENUE)))
        currency = _walk(event, ("properties", "currency"))
        _set(variables, "last_order_currency", None if currency is None else currency.upper())
    if consent is False or consent is True:
        body["subscribed"] = "true" if consent else "false"
    body["upsert"] = "true"
    body["vars"] = _json(variables).decode()
    if not _EMAIL.match(email) or not body["vars"].startswith("{"):
        raise ValueError("invalid body")
    base = f"{settings['base_url']}/v3/lists/{quote(settings['list_address'], safe=_SAFE)}/members"
    return ("send", base, urlencode(list(body.items())).encode("ascii"), f"{base}/{quote(email, safe=_SAFE)}")


def mailjet(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    email = _email(event)
    mapping = _contact_mapping(event)
    if mapping is None:
        return ("drop", "unmapped")
    if email is None:
        return ("drop", "no_email")
    if not is_valid_email(email):
        return ("drop", "invalid_email")
    consent = _walk(event, CONSENT)
    if consent is False or mapping == "unsubscribed":
        action = "unsub"
    elif mapping == "subscribed" or consent is True:
        action = "addforce"
    else:
        action = "addnoforce"
    properties: dict[str, Any] = {}
    _set(properties, "first_name", _pick(event, FIRST))
    _set(properties, "last_name", _pick(event, LAST))
    if mapping == "signed_up":
        _set(properties, "signup_method", _pick(event, METHOD))
    elif mapping == "identified":
        _set(properties, "company", _pick(event, COMPANY))
        _set(properties, "plan", _pick(event, PLAN))
    elif mapping == "order_completed":
        revenue = _pick(event, REVENUE)
        _set(properties, "last_order_value", None if revenue is None else float(_number(revenue)))
        currency = _walk(event, ("properties", "currency"))
        _set(properties, "last_order_currency", None if currency is None else currency.upper())
    body: dict[str, Any] = {"Email": email}
    _set(body, "Name", _full_name(event))
    body["Action"] = action
    if properties:
        body["Properties"] = properties
    if not _EMAIL.match(email):
        raise ValueError("invalid body")
    return ("send", f"https://api.mailjet.com/v3/REST/contactslist/{settings['list_id']}/managecontact", _json(body))


def sendgrid(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    email = _email(event)
    mapping = _contact_mapping(event)
    if mapping is None or mapping == "order_completed":
        return ("drop", "unmapped")
    if email is None:
        return ("drop", "no_email")
    if not is_valid_email(email):
        return ("drop", "invalid_email")
    if _walk(event, CONSENT) is False or mapping == "unsubscribed":
        url = f"{settings['base_url']}/v3/asm/groups/{settings['unsubscribe_group_id']}/suppressions"
        return ("send", url, _json({"recipient_emails": [email]}))
    contact: dict[str, Any] = {"email": email}
    _set(contact, "first_name", _pick(event, FIRST))
    _set(contact, "last_name", _pick(event, LAST))
    plan = _pick(event, PLAN)
    if mapping == "identified" and settings.get("plan_field_id") and plan:
        contact["custom_fields"] = {settings["plan_field_id"]: plan}
    if not _EMAIL.match(email):
        raise ValueError("invalid body")
    body = {"list_ids": [settings["list_id"]], "contacts": [contact]}
    return ("send", f"{settings['base_url']}/v3/marketing/contacts", _json(body))


def brevo(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    email = _email(event)
    mapping = _contact_mapping(event)
    if mapping is None:
        return ("drop", "unmapped")
    if email is None:
        return ("drop", "no_email")
    if not is_valid_email(email):
        return ("drop", "invalid_email")
    consent = _walk(event, CONSENT)
    blacklisted: bool | None = None
    if consent is False or mapping == "unsubscribed":
        blacklisted = True
    elif mapping == "subscribed" or consent is True:
        blacklisted = False
    attributes: dict[str, Any] = {}
    _set(attributes, "FIRSTNAME", _pick(event, FIRST))
    _set(attributes, "LASTNAME", _pick(event, LAST))
    if mapping == "identified":
        _set(attributes, "PLAN", _pick(event, PLAN))
    elif mapping == "signed_up":
        _set(attributes, "SIGNUP_METHOD", _pick(event, METHOD))
    elif mapping == "order_completed":
        _set(attributes, "LAST_ORDER_VALUE", _number(_pick(event, REVENUE)))
    body: dict[str, Any] = {"email": email}
    _set(body, "ext_id", _pick(event, (("anonymousId",), ("anonymous_id",))))
    if attributes:
        body["attributes"] = attributes
    body["listIds"] = [settings["list_id"]]
    body["updateEnabled"] = True
    _set(body, "emailBlacklisted", blacklisted)
    if not _EMAIL.match(email):
        raise ValueError("invalid body")
    return ("send", "https://api.brevo.com/v3/contacts", _json(body))


def klaviyo(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    email = _email(event)
    mapping = _contact_mapping(event)
    if mapping is None:
        return ("drop", "unmapped")
    if email is None:
        return ("drop", "no_email")
    if not is_valid_email(email):
        return ("drop", "invalid_email")
    consent = _walk(event, CONSENT)
    relationships = {"list": {"data": {"type": "list", "id": settings["list_id"]}}}
    if consent is False or mapping in {"unsubscribed", "subscribed"} or consent is True:
        subscribe = not (consent is False or mapping == "unsubscribed")
        profile = {
            "type": "profile",
            "attributes": {
                "email": email,
                "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"}}},
            },
        }
        attributes: dict[str, Any] = {"profiles": {"data": [profile]}}
        if subscribe:
            attributes = {"custom_source": "relay", **attributes}
        kind = "profile-subscription-bulk-create-job" if subscribe else "profile-subscription-bulk-delete-job"
        url = "https://a.klaviyo.com/api/" + (
            "profile-subscription-bulk-create-jobs" if subscribe else "profile-subscription-bulk-delete-jobs"
        )
        return ("send", url, _json({"data": {"type": kind, "attributes": attributes, "relationships": relationships}}))
    profile_attributes: dict[str, Any] = {"email": email}
    _set(profile_attributes, "external_id", _pick(event, (("userId",), ("user_id",))))
    _set(profile_attributes, "first_name", _pick(event, FIRST))
    _set(profile_attributes, "last_name", _pick(event, LAST))
    properties: dict[str, Any] = {}
    if mapping == "identified":
        _set(profile_attributes, "organization", _pick(event, COMPANY))
        _set(properties, "plan", _pick(event, PLAN))
    elif mapping == "signed_up":
        _set(properties, "signup_method", _pick(event, METHOD))
    elif mapping == "order_completed":
        _set(properties, "last_order_value", _number(_pick(event, REVENUE)))
    if properties:
        profile_attributes["properties"] = properties
    if not _EMAIL.match(email):
        raise ValueError("invalid body")
    return (
        "send",
        "https://a.klaviyo.com/api/profile-import",
        _json({"data": {"type": "profile", "attributes": profile_attributes}}),
    )


_WEBHOOK_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})


def webhook(event: Any, settings: dict[str, Any], now: float) -> Outcome:
    if event.get("type") not in _WEBHOOK_TYPES:
        return ("drop", "unmapped")
    consent = _walk(event, ("context", "consent", "canonical"))
    purpose = settings.get("consent_purpose")
    if purpose is not None and isinstance(consent, dict) and consent.get(purpose) is False:
        return ("drop", "consent_withdrawn")
    body: dict[str, Any] = {"type": event["type"]}
    _set(body, "event", event.get("event"))
    _set(body, "messageId", _pick(event, (("messageId",), ("message_id",))))
    _set(body, "timestamp", _pick(event, (("timestamp",), ("sentAt",), ("sent_at",), ("receivedAt",))))
    _set(body, "userId", _pick(event, (("userId",), ("user_id",))))
    _set(body, "anonymousId", _pick(event, (("anonymousId",), ("anonymous_id",))))
    _set(body, "email", _email(event))
    _set(body, "traits", _pick(event, (("traits",), ("context", "traits"))))
    _set(body, "properties", event.get("properties"))
    _set(body, "consent", consent)
    content = _json(body)
    signature = None
    if settings.get("signing_secret") is not None:
        timestamp = str(int(now * 1000))
        digest = hmac.new(
            settings["signing_secret"].encode(), timestamp.encode() + b"." + content, hashlib.sha256
        ).hexdigest()
        signature = f"sha256={digest}"
    return ("send", settings["url"], content, signature)


HANDWRITTEN: dict[str, Callable[[Any, dict[str, Any], float], Outcome]] = {
    "mailgun": mailgun,
    "mailjet": mailjet,
    "sendgrid": sendgrid,
    "brevo": brevo,
    "klaviyo": klaviyo,
    "webhook": webhook,
}

"""Meta's Conversions API, by hand: one server event, customer information hashed, as a form post."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import fastjsonschema

from relay import Request
from relay.bundled import schemas_dir

from .base import FORM, Drop, Integration, Outcome, Path, Send, form_content, keep, number, pick, to_json, walk
from .customerio import unix_seconds
from .fields import ANONYMOUS_ID, EMAIL, FIRST, LAST, USER_ID, email_of
from .mailchimp import PHONE, TIMESTAMP

__all__ = ["FacebookCapi"]

_PAGE_URL: tuple[Path, ...] = (("context", "page", "url"), ("properties", "url"))
_IP: tuple[Path, ...] = (("context", "ip"), ("request_ip",))
_AGENT: tuple[Path, ...] = (("context", "userAgent"), ("context", "user_agent"))
_FBP: tuple[Path, ...] = (("context", "fbp"), ("properties", "fbp"))
_FBC: tuple[Path, ...] = (("context", "fbc"), ("properties", "fbc"))
_REVENUE: tuple[Path, ...] = (("properties", "revenue"), ("properties", "total"), ("properties", "value"))
_ORDER_ID: tuple[Path, ...] = (("properties", "order_id"), ("properties", "orderId"))
_PRODUCT_ID: tuple[Path, ...] = (("properties", "product_id"), ("properties", "productId"), ("properties", "sku"))
_MESSAGE_ID: tuple[Path, ...] = (("messageId",), ("message_id",))
_STANDARD = {
    "Order Completed": ("purchase", "Purchase"),
    "Product Added": ("add_to_cart", "AddToCart"),
    "Checkout Started": ("initiate_checkout", "InitiateCheckout"),
    "Product Viewed": ("view_content", "ViewContent"),
    "Products Searched": ("search", "Search"),
    "Signed Up": ("complete_registration", "CompleteRegistration"),
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isascii() and ch.isdigit())


class FacebookCapi(Integration):
    name = "facebook_capi"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        version = settings.get("api_version") or "v21.0"
        self.url = f"https://graph.facebook.com/{version}/{settings['pixel_id']}/events"
        self.token = str(settings["access_token"])
        self.test_code = settings.get("test_event_code")
        self.action_source = settings.get("action_source") or "website"
        self.currency = settings.get("default_currency") or "USD"
        self.require_consent = bool(settings.get("require_consent"))
        schema = json.loads((schemas_dir() / "facebook_capi/events.schema.json").read_text(encoding="utf-8"))
        self.check_form = fastjsonschema.compile(schema)
        self.check_events = fastjsonschema.compile(schema["properties"]["data"]["contentSchema"])

    def render(self, event: Any, now: float) -> Outcome:
        kind, name = event.get("type"), event.get("event")
        if kind == "page":
            mapping, event_name = "page_view", "PageView"
        elif kind == "track":
            mapping, event_name = _STANDARD.get(name, ("custom_event", name))
        else:
            return Drop("identify" if kind == "identify" else "unmapped")
        consent = walk(event, ("context", "consent", "canonical", "marketing"))
        if consent is False:
            return Drop("consent_denied")
        if self.require_consent and consent is not True:
            return Drop("consent_required")
        email, phone = email_of(event, EMAIL), pick(event, PHONE)
        user_id, anonymous_id = pick(event, USER_ID), pick(event, ANONYMOUS_ID)
        fbp, fbc = pick(event, _FBP), pick(event, _FBC)
        if all(v is None for v in (email, phone, user_id, anonymous_id, fbp, fbc)):
            return Drop("nothing_to_match")
        agent = pick(event, _AGENT)
        if self.action_source == "website" and agent is None:
            return Drop("no_user_agent")
        revenue = number(pick(event, _REVENUE))
        if mapping == "purchase" and revenue is None:
            return Drop("purchase_without_value")
        server: dict[str, Any] = {}
        keep(server, "event_time", unix_seconds(pick(event, TIMESTAMP)))
        keep(server, "event_id", pick(event, _MESSAGE_ID))
        server["action_source"] = self.action_source
        keep(server, "event_source_url", pick(event, _PAGE_URL))
        server["user_data"] = self._user_data(event, email, phone, user_id, anonymous_id, agent, fbp, fbc)
        keep(server, "event_name", event_name)
        custom = self._custom_data(event, mapping, revenue)
        if custom is not None:
            server["custom_data"] = custom
        if "event_time" not in server:
            server["event_time"] = int(now)  # the send time, as relay's template says
        events = [server]
        self.check_events(events)
        body = {"data": to_json(events), "access_token": self.token}
        keep(body, "test_event_code", self.test_code)
        self.check_form(body)
        return Send(
            (
                Request(
                    method="POST",
                    url=self.url,
                    headers={"Content-Type": FORM},
                    body=body,
                    content=form_content(body),
                    encoding="form",
                    step="event",
                    role="track",
                ),
            )
        )

    @staticmethod
    def _user_data(
        event: Any, email: Any, phone: Any, user_id: Any, anonymous_id: Any, agent: Any, fbp: Any, fbc: Any
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if email:
            data["em"] = [_sha256(str(email))]
        if phone and _digits(phone):
            data["ph"] = [_sha256(_digits(phone).lstrip("0"))]
        for key, paths in (("fn", FIRST), ("ln", LAST)):
            value = pick(event, paths)
            if value:
                data[key] = [_sha256(str(value).strip().lower())]
        external = [_sha256(str(v)) for v in (user_id, anonymous_id) if v]
        if external:
            data["external_id"] = external
        keep(data, "client_ip_address", pick(event, _IP))
        keep(data, "client_user_agent", agent)
        keep(data, "fbp", fbp)
        keep(data, "fbc", fbc)
        return data

    def _custom_data(self, event: Any, mapping: str, revenue: Any) -> dict[str, Any] | None:
        properties = event.get("properties") if isinstance(event.get("properties"), Mapping) else {}
        currency = (properties.get("currency") or self.currency).upper()
        custom: dict[str, Any] = {}
        products = properties.get("products")
        product_id = pick(event, _PRODUCT_ID)
        if mapping == "purchase":
            custom["value"] = revenue
            custom["currency"] = currency
            order_id = pick(event, _ORDER_ID)
            keep(custom, "order_id", None if order_id is None else str(order_id))
            keep(custom, "content_type", "product" if products else None)
            if isinstance(products, list):
                ids = [str(p["product_id"]) for p in products if isinstance(p, Mapping) and "product_id" in p]
                keep(custom, "content_ids", ids or None)
                keep(custom, "num_items", len(products) or None)
        elif mapping == "add_to_cart":
            keep(custom, "value", number(properties["price"]) if "price" in properties else None)
            custom["currency"] = currency
            keep(custom, "content_ids", None if product_id is None else [str(product_id)])
            keep(custom, "content_type", None if product_id is None else "product")
        elif mapping == "initiate_checkout":
            keep(custom, "value", revenue)
            custom["currency"] = currency
            keep(custom, "num_items", len(products) if isinstance(products, list) and products else None)
        elif mapping == "view_content":
            keep(custom, "content_ids", None if product_id is None else [str(product_id)])
            keep(custom, "content_type", None if product_id is None else "product")
            keep(custom, "content_name", properties.get("name"))
        elif mapping == "search":
            keep(custom, "search_string", properties.get("query"))
        else:
            return None
        return custom or None

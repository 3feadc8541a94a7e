"""Klaviyo, by hand: a profile import, then a subscribe/unsubscribe job when consent says so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay import Request

from .base import Drop, Integration, Outcome, Send, json_request, keep, number, pick, schema_check
from .fields import COMPANY, FIRST, LAST, METHOD, PLAN, REVENUE, USER_ID, contact, subscription

__all__ = ["Klaviyo"]

_API = "https://a.klaviyo.com/api/"
_JSON_API = "application/vnd.api+json"
_CREDENTIALS = frozenset({"Authorization"})


class Klaviyo(Integration):
    name = "klaviyo"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.headers = {
            "Content-Type": _JSON_API,
            "revision": str(settings["revision"]),
            "accept": _JSON_API,
            "Authorization": f"Klaviyo-API-Key {settings['api_key']}",
        }
        self.list_id = settings["list_id"]
        self.check_profile = schema_check("klaviyo/profile-import.schema.json")
        self.check_job = schema_check("klaviyo/subscription-job.schema.json")

    def render(self, event: Any, now: float) -> Outcome:
        found = contact(event)
        if isinstance(found, Drop):
            return found
        mapping, email = found
        subscribed = subscription(event, mapping)
        profile: dict[str, Any] = {"email": email}
        keep(profile, "external_id", pick(event, USER_ID))
        keep(profile, "first_name", pick(event, FIRST))
        keep(profile, "last_name", pick(event, LAST))
        properties: dict[str, Any] = {}
        if mapping == "identified":
            keep(profile, "organization", pick(event, COMPANY))
            keep(properties, "plan", pick(event, PLAN))
        elif mapping == "signed_up":
            keep(properties, "signup_method", pick(event, METHOD))
        elif mapping == "order_completed":
            keep(properties, "last_order_value", number(pick(event, REVENUE)))
        if properties:
            profile["properties"] = properties
        body = {"data": {"type": "profile", "attributes": profile}}
        self.check_profile(body)
        requests: tuple[Request, ...] = (self._request("profile", _API + "profile-import", body),)
        if subscribed is not None:
            requests += (self._job(email, subscribe=subscribed),)
        return Send(requests)

    def _job(self, email: str, *, subscribe: bool) -> Request:
        consent = "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"
        profile = {
            "type": "profile",
            "attributes": {"email": email, "subscriptions": {"email": {"marketing": {"consent": consent}}}},
        }
        attributes: dict[str, Any] = {"profiles": {"data": [profile]}}
        if subscribe:
            attributes = {"custom_source": "relay", **attributes}
        kind = "profile-subscription-bulk-create-job" if subscribe else "profile-subscription-bulk-delete-job"
        relationships = {"list": {"data": {"type": "list", "id": self.list_id}}}
        body = {"data": {"type": kind, "attributes": attributes, "relationships": relationships}}
        self.check_job(body)
        return self._request("subscribe" if subscribe else "unsubscribe", _API + kind + "s", body)

    def _request(self, step: str, url: str, body: dict[str, Any]) -> Request:
        return json_request(step, "POST", url, self.headers, body, _CREDENTIALS)

"""A faithful fake of Mailgun's mailing-list member API (notes/vendor-apis.md §4.1)."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Mapping
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import unquote

from .server import FakeRequest, FakeResponse, FakeVendor, RateLimit

__all__ = ["MailgunFake"]

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_BOOLS = {"yes": True, "true": True, "no": False, "false": False}
_HTML_404 = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>404 Not Found</title>\n'
    b"<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n"
)


class _BadRequest(Exception):
    pass


class MailgunFake(FakeVendor):
    name = "mailgun"

    def __init__(
        self, api_key: str = "key-test", lists: list[str] | None = None, *, omitted_subscribed: str = "keep"
    ) -> None:
        super().__init__()
        self.api_key = api_key
        # Mailgun documents `subscribed` as defaulting to yes, but not whether an upsert that
        # leaves it out keeps an existing member's status ("keep") or resets it ("reset").
        # Both are served, so a preset can be proven right under either.
        if omitted_subscribed not in ("keep", "reset"):
            raise ValueError("omitted_subscribed is 'keep' or 'reset'")
        self.omitted_subscribed = omitted_subscribed
        self.lists: dict[str, dict[str, Any]] = {}
        #: members.json calls, by size; above 100 members the import lands this much later.
        self.bulk_calls: list[int] = []
        self.background_seconds = 0.2
        for address in lists or []:
            self.add_list(address)

    # -- setup and inspection -------------------------------------------------------

    def add_list(self, address: str, name: str = "") -> None:
        self.lists[address.lower()] = {
            "address": address,
            "name": name,
            "description": "",
            "access_level": "readonly",
            "reply_preference": "list",
            "created_at": formatdate(usegmt=True),
            "members": {},
        }

    def configure(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key", self.api_key)
        self.omitted_subscribed = settings.get("omitted_subscribed", self.omitted_subscribed)
        for address in settings.get("lists", []):
            self.add_list(address)

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key = str(settings["api_key"])
        if settings.get("list_address") and settings["list_address"].lower() not in self.lists:
            self.add_list(settings["list_address"])

    def seed(self, method: str, path: str, answer: Any, status: int = 200) -> None:
        """A member read (``GET /v3/lists/L/members/A`` answering ``{"member": {...}}``) stores the member."""
        found = re.fullmatch(r"/v3/lists/([^/]+)/members/([^/]+)", unquote(path))
        if method != "GET" or found is None or not isinstance(answer, dict) or "member" not in answer:
            super().seed(method, path, answer, status)
            return
        list_address, _address = found.groups()
        with self.lock:
            if list_address.lower() not in self.lists:
                self.add_list(list_address)
            member = dict(answer["member"])
            lst = self.lists[list_address.lower()]
            lst["members"][member["address"].lower()] = {
                "address": member["address"],
                "name": member.get("name", ""),
                "subscribed": member.get("subscribed", True),
                "vars": dict(member.get("vars") or {}),
            }

    def snapshot(self) -> dict[str, Any]:
        return {address: {"members": [dict(m) for m in lst["members"].values()]} for address, lst in self.lists.items()}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [address, m["address"], m["name"], "yes" if m["subscribed"] else "no", m["vars"]]
            for address, lst in self.lists.items()
            for m in lst["members"].values()
        ]
        return "Mailgun list members", ["list", "address", "name", "subscribed", "vars"], rows

    def member(self, list_address: str, address: str) -> dict[str, Any] | None:
        with self.lock:
            member = self.lists[list_address.lower()]["members"].get(address.lower())
            return dict(member) if member else None

    # -- protocol ---------------------------------------------------------------------

    def credential(self, request: FakeRequest) -> str:
        return request.headers.get("authorization", "")

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        reset = math.ceil(time.time() + limit.window)  # epoch seconds, as mailgun-go reads it
        return FakeResponse.json(
            429,
            {"message": "Too Many Requests"},
            **{"X-RateLimit-Limit": str(limit.limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        )

    def _authorized(self, request: FakeRequest) -> bool:
        return request.basic_credentials() == ("api", self.api_key)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if not self._authorized(request):  # auth comes before everything, the 404 included
            return FakeResponse(
                401,
                b"Forbidden",
                {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Basic realm="MG API"'},
            )
        match = re.fullmatch(r"/v3/lists/([^/]+)(/members(?:\.json)?)?(?:/([^/]+))?", request.path)
        if not match or (match.group(3) and match.group(2) != "/members"):
            return FakeResponse(404, _HTML_404, {"Content-Type": "text/html; charset=utf-8"})
        list_address, section, member = match.groups()
        lst = self.lists.get(list_address.lower())
        if lst is None:
            return FakeResponse.json(404, {"message": f"Mailing list {list_address} not found"})
        try:
            return self._route(request, lst, section, member)
        except _BadRequest as exc:
            return FakeResponse.json(400, {"message": str(exc)})

    def _route(
        self, request: FakeRequest, lst: dict[str, Any], section: str | None, member: str | None
    ) -> FakeResponse:
        method = request.method
        if section is None and method == "GET":
            return FakeResponse.json(200, {"list": _list_view(lst)})
        if section == "/members" and member is None and method == "POST":
            return self._add_member(lst, request.form())
        if section == "/members" and member is None and method == "GET":
            items = [_member_view(m) for m in lst["members"].values()]
            return FakeResponse.json(200, {"total_count": len(items), "items": items})
        if section == "/members.json" and method == "POST":
            fields = {**request.query, **request.form()}
            return self._add_many(lst, fields)
        if section == "/members" and member is not None:
            existing = lst["members"].get(member.lower())
            if existing is None:
                return FakeResponse.json(
                    404, {"message": f"Member {member} of mailing list {lst['address']} not found"}
                )
            if method == "GET":
                return FakeResponse.json(200, {"member": _member_view(existing)})
            if method == "PUT":
                self._apply(existing, request.form(), replace_address=True, lst=lst)
                return FakeResponse.json(
                    200, {"member": _member_view(existing), "message": "Mailing list member has been updated"}
                )
            if method == "DELETE":
                del lst["members"][member.lower()]
                return FakeResponse.json(
                    200, {"member": {"address": existing["address"]}, "message": "Mailing list member has been deleted"}
                )
        return FakeResponse(404, _HTML_404, {"Content-Type": "text/html; charset=utf-8"})

    def _add_member(self, lst: dict[str, Any], form: dict[str, str]) -> FakeResponse:
        address = _address(form.get("address"))
        upsert = _bool(form.get("upsert"), "upsert", default=False)
        subscribed = _bool(form.get("subscribed"), "subscribed", default=True) if "subscribed" in form else None
        vars_ = _vars(form["vars"]) if "vars" in form else None
        existing = lst["members"].get(address.lower())
        if existing is not None and not upsert:
            raise _BadRequest(f"Address already exists '{address}'")
        if existing is None:
            existing = _new_member(lst, address)
            message = "Mailing list member has been created"
        else:
            message = "Mailing list member has been updated"
        # Supplied fields replace (vars wholesale, no deep merge); omitted ones stay.
        if "name" in form:
            existing["name"] = form["name"]
        if subscribed is not None:
            existing["subscribed"] = subscribed
        elif self.omitted_subscribed == "reset":
            existing["subscribed"] = True  # the documented default, applied to an existing member
        if vars_ is not None:
            existing["vars"] = vars_
        return FakeResponse.json(200, {"member": _member_view(existing), "message": message})

    def _apply(
        self, member: dict[str, Any], form: dict[str, str], *, replace_address: bool, lst: dict[str, Any]
    ) -> None:
        if "subscribed" in form:
            member["subscribed"] = _bool(form["subscribed"], "subscribed", default=True)
        if "vars" in form:
            member["vars"] = _vars(form["vars"])
        if "name" in form:
            member["name"] = form["name"]
        if replace_address and "address" in form:
            new = _address(form["address"])
            lst["members"].pop(member["address"].lower(), None)
            member["address"] = new
            lst["members"][new.lower()] = member

    def _add_many(self, lst: dict[str, Any], fields: dict[str, str]) -> FakeResponse:
        """members.json: up to 1,000 members; every one is checked before any is written (a bad
        one refuses the call). Above 100 the import runs in the background (``task-id``)."""
        try:
            members = json.loads(fields.get("members", ""))
        except ValueError:
            raise _BadRequest("'members' parameter should be a JSON array") from None
        if not isinstance(members, list):
            raise _BadRequest("'members' parameter should be a JSON array")
        if len(members) > 1000:
            raise _BadRequest("'members' parameter should contain at most 1000 items")
        upsert = _bool(fields.get("upsert"), "upsert", default=False)
        checked = []
        for item in members:
            data = {"address": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else {}
            address = _address(data.get("address"))
            form = {
                k: (json.dumps(v) if k == "vars" else str(v).lower() if isinstance(v, bool) else v)
                for k, v in data.items()
                if k != "address"
            }
            if "subscribed" in form:
                _bool(form["subscribed"], "subscribed", default=True)
            if "vars" in form:
                _vars(form["vars"])
            checked.append((address, form))
        self.bulk_calls.append(len(members))
        if len(members) <= 100:
            self._import(lst, checked, upsert)
            return FakeResponse.json(200, {"list": _list_view(lst), "message": "Mailing list has been updated"})
        task = threading.Timer(self.background_seconds, self._import_later, (lst, checked, upsert))
        task.daemon = True
        task.start()
        body = {"list": _list_view(lst), "message": "Mailing list upload started in background", "task-id": "4321"}
        return FakeResponse.json(200, body)

    def _import_later(self, lst: dict[str, Any], checked: list[tuple[str, dict[str, Any]]], upsert: bool) -> None:
        with self.lock:
            self._import(lst, checked, upsert)

    def _import(self, lst: dict[str, Any], checked: list[tuple[str, dict[str, Any]]], upsert: bool) -> None:
        for address, form in checked:
            existing = lst["members"].get(address.lower())
            if existing is not None and not upsert:
                continue  # the bulk endpoint skips duplicates silently
            if existing is None:
                existing = _new_member(lst, address)
            self._apply(existing, form, replace_address=False, lst=lst)


def _new_member(lst: dict[str, Any], address: str) -> dict[str, Any]:
    """A member as Mailgun creates one: subscribed, no name, no vars (matched ignoring case)."""
    member: dict[str, Any] = {"address": address, "name": "", "subscribed": True, "vars": {}}
    lst["members"][address.lower()] = member
    return member


def _address(raw: str | None) -> str:
    _, address = parseaddr(raw or "")
    if not address or not _EMAIL.match(address):
        raise _BadRequest("The 'address' parameter should be a valid email address")
    return address


def _bool(raw: str | None, name: str, *, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    try:
        return _BOOLS[raw.strip().lower()]
    except KeyError:
        raise _BadRequest(f"'{name}' parameter should be yes or no") from None


def _vars(raw: str) -> dict[str, Any]:
    if raw.strip() in ("", "null", "[]"):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise _BadRequest("Failed to parse 'vars': invalid JSON") from None
    if not isinstance(value, dict):
        raise _BadRequest("'vars' parameter should be a JSON object")
    return value


def _member_view(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": member["address"],
        "name": member["name"],
        "subscribed": member["subscribed"],
        "vars": dict(member["vars"]),
    }


def _list_view(lst: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in lst.items() if k != "members"}
    view["members_count"] = len(lst["members"])
    return view

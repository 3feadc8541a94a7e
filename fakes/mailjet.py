"""A faithful fake of Mailjet's v3 REST contact-list API (notes/vendor-apis.md §4.2)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from itertools import count
from typing import Any

from .mailjet_bulk import BulkJobs
from .server import FakeRequest, FakeResponse, FakeVendor, RateLimit

__all__ = ["MailjetFake"]

_ACTIONS = {"addforce", "addnoforce", "remove", "unsub"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATATYPES = {"str", "int", "float", "bool", "datetime"}
_HTML_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n</body>\r\n</html>\r\n"
)


def _error(status: int, message: str, info: Any = "") -> FakeResponse:
    return FakeResponse.json(status, {"ErrorInfo": info, "ErrorMessage": message, "StatusCode": status}, reason=message)


def _packet(status: int, rows: list[dict[str, Any]]) -> FakeResponse:
    return FakeResponse.json(status, {"Count": len(rows), "Data": rows, "Total": len(rows)})


class MailjetFake(FakeVendor):
    name = "mailjet"

    def __init__(
        self,
        api_key: str = "pub-test",
        secret_key: str = "sec-test",
        lists: list[int] | None = None,
        properties: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.api_key, self.secret_key = api_key, secret_key
        self.lists: dict[int, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.memberships: dict[tuple[int, str], bool] = {}  # (list, email) -> subscribed
        self.metadata: dict[str, dict[str, Any]] = {}
        self._ids = count(1505363094)
        self._meta_ids = count(1)
        #: managemanycontacts: asynchronous jobs (fakes/mailjet_bulk.py).
        self.bulk = BulkJobs(self._apply_bulk, self._bulk_problems)
        for list_id in lists or []:
            self.add_list(list_id)
        for name, datatype in (properties or {}).items():
            self.define_property(name, datatype)
        for builtin in ("first_name", "last_name"):  # Mailjet ships these
            if builtin not in self.metadata:
                self.define_property(builtin, "str")

    # -- setup and inspection -----------------------------------------------------------

    def add_list(self, list_id: int, name: str = "") -> None:
        self.lists[int(list_id)] = {"ID": int(list_id), "Name": name or f"list {list_id}"}

    def define_property(self, name: str, datatype: str, namespace: str = "static") -> dict[str, Any]:
        row = {"ID": next(self._meta_ids), "Name": name, "Datatype": datatype, "NameSpace": namespace}
        self.metadata[name.lower()] = row
        return row

    def configure(self, settings: dict[str, Any]) -> None:
        self.bulk.polls_to_finish = int(settings.get("polls_to_finish", self.bulk.polls_to_finish))
        self.api_key = settings.get("api_key", self.api_key)
        self.secret_key = settings.get("secret_key", self.secret_key)
        for list_id in settings.get("lists", []):
            self.add_list(list_id)
        for name, datatype in settings.get("properties", {}).items():
            self.define_property(name, datatype)

    def accept(self, settings: Mapping[str, Any]) -> None:
        self.api_key, self.secret_key = str(settings["api_key"]), str(settings["secret_key"])
        if settings.get("list_id") is not None and int(settings["list_id"]) not in self.lists:
            self.add_list(int(settings["list_id"]))

    def snapshot(self) -> dict[str, Any]:
        return {
            "contacts": [
                {
                    **c,
                    "Properties": dict(c["Properties"]),
                    "Lists": {
                        str(lid): ("subscribed" if sub else "unsubscribed")
                        for (lid, email), sub in self.memberships.items()
                        if email == key
                    },
                }
                for key, c in self.contacts.items()
            ],
            "properties": {m["Name"]: m["Datatype"] for m in self.metadata.values()},
        }

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [
            [c["Email"], c["Name"], ", ".join(f"{k}: {v}" for k, v in c["Lists"].items()), c["Properties"]]
            for c in self.snapshot()["contacts"]
        ]
        return "Mailjet contacts", ["email", "name", "lists", "properties"], rows

    def contact(self, email: str) -> dict[str, Any] | None:
        snap = {c["Email"].lower(): c for c in self.snapshot()["contacts"]}
        return snap.get(email.lower())

    # -- protocol -------------------------------------------------------------------------

    def credential(self, request: FakeRequest) -> str:
        return request.headers.get("authorization", "")

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:
        # Mailjet's 429 is an HTML page with no Retry-After and no rate-limit headers.
        return FakeResponse(
            429, b"<html><body><h1>429 Too Many Requests</h1></body></html>", {"Content-Type": "text/html"}
        )

    def _authorized(self, request: FakeRequest) -> bool:
        return request.basic_credentials() == (self.api_key, self.secret_key)

    def handle(self, request: FakeRequest) -> FakeResponse | None:
        if not self._authorized(request):
            return FakeResponse(
                401,
                b"",
                {"Content-Type": "text/html", "WWW-Authenticate": 'Basic realm="Provide an apiKey and secretKey"'},
            )
        path = request.path.lower().rstrip("/")
        data = re.fullmatch(r"/v3/data/batchjob/(\d+)/jsonerror/application:json/last", path)
        if data is not None and request.method == "GET":
            errors = self.bulk.errors(int(data.group(1)))
            return FakeResponse.json(200, errors) if errors is not None else _error(404, "Object not found")
        if not path.startswith("/v3/rest/"):
            return FakeResponse(404, _HTML_404, {"Content-Type": "text/html"})
        parts = path.removeprefix("/v3/rest/").split("/")
        method = request.method
        if parts[0] == "contactmetadata":
            return self._metadata(request) if len(parts) == 1 else _error(404, "Object not found")
        if parts[0] == "contactslist":
            if len(parts) == 1 and method == "GET":
                return _packet(200, list(self.lists.values()))
            list_id = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            if list_id is None or list_id not in self.lists:
                return _error(404, "Object not found")
            if len(parts) == 2 and method == "GET":
                return _packet(200, [self.lists[list_id]])
            if len(parts) == 3 and parts[2] == "managecontact" and method == "POST":
                return self._manage_contact(list_id, request)
            if len(parts) >= 3 and parts[2] == "managemanycontacts":
                return self._bulk(request, parts[3:], list_id)
        if parts[0] == "contact" and len(parts) >= 2 and parts[1] == "managemanycontacts":
            return self._bulk(request, parts[2:], None)
        if parts[0] == "contact" and len(parts) == 2 and method == "GET":
            contact = self.contacts.get(parts[1])
            return _packet(200, [self._contact_row(contact)]) if contact else _error(404, "Object not found")
        return _error(500, f'Could not determine HTTP module for request "{parts[0]}"', "EFPWebError")

    def _body(self, request: FakeRequest) -> dict[str, Any] | FakeResponse:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Invalid json input: not a JSON object")
        if not isinstance(body, dict):
            return _error(400, "Invalid json input: not a JSON object")
        return body

    def _metadata(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET":
            return _packet(200, list(self.metadata.values()))
        body = self._body(request)
        if isinstance(body, FakeResponse):
            return body
        problems = {}
        if not isinstance(body.get("Name"), str) or not body["Name"]:
            problems["Name"] = "MJ03 A non-empty value is required"
        if body.get("Datatype") not in _DATATYPES:
            problems["Datatype"] = f"Invalid datatype: {body.get('Datatype')}"
        if problems:
            return _error(400, "Object properties invalid", problems)
        if body["Name"].lower() in self.metadata:
            return _error(400, "MJ18 A Contact property with this name already exists")
        return _packet(201, [self.define_property(body["Name"], body["Datatype"], body.get("NameSpace", "static"))])

    def _validate_contact(self, body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
        problems: dict[str, Any] = {}
        unknown = [k for k in body if k not in allowed]
        if unknown:
            problems["_unknown"] = unknown
        email = body.get("Email")
        if not isinstance(email, str) or not email:
            problems["Email"] = "MJ08 Property email is invalid: MJ03 A non-empty value is required"
        elif not _EMAIL.match(email):
            problems["Email"] = "MJ08 Property email is invalid: MJ07 Value is not a valid email address"
        if "Action" in allowed and body.get("Action") not in _ACTIONS:
            problems["Action"] = f"Invalid action: {body.get('Action') or ''}"
        properties = body.get("Properties", {})
        if not isinstance(properties, dict):
            problems["Properties"] = "Properties must be a JSON object"
        else:
            bad = []
            for name, value in properties.items():
                meta = self.metadata.get(name.lower())
                if meta is None:
                    bad.append({name: "Property not defined"})
                elif value is not None and not _fits(meta["Datatype"], value):
                    bad.append({name: "Property type does not match definition"})
            if bad:
                problems["Properties"] = bad
        return problems

    def _manage_contact(self, list_id: int, request: FakeRequest) -> FakeResponse:
        body = self._body(request)
        if isinstance(body, FakeResponse):
            return body
        problems = self._validate_contact(body, {"Email", "Name", "Action", "Properties"})
        if "_unknown" in problems:
            field = problems["_unknown"][0]
            return _error(400, f'Invalid json input: object ""->"TContactManage" has no property "{field}"')
        if problems:
            return _error(400, "Object properties invalid", problems)  # on any 400 nothing is written
        contact = self._upsert(body)
        self._apply_action(list_id, contact["Email"].lower(), body["Action"])
        row = {
            "ContactID": contact["ID"],
            "Email": contact["Email"],
            "Action": body["Action"],
            "Name": contact["Name"],
            "Properties": dict(contact["Properties"]),
        }
        return _packet(201, [row])

    def _upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        key = body["Email"].lower()
        contact = self.contacts.get(key)
        if contact is None:
            contact = self.contacts[key] = {"ID": next(self._ids), "Email": body["Email"], "Name": "", "Properties": {}}
        if body.get("Name"):
            contact["Name"] = body["Name"]
        for name, value in (body.get("Properties") or {}).items():  # merged key by key; null unsets
            canonical = self.metadata[name.lower()]["Name"]
            if value is None:
                contact["Properties"].pop(canonical, None)
            else:
                contact["Properties"][canonical] = value
        return contact

    def _apply_action(self, list_id: int, email: str, action: str) -> None:
        key = (list_id, email)
        if action == "addforce":
            self.memberships[key] = True
        elif action == "addnoforce":
            self.memberships.setdefault(key, True)
        elif action == "unsub":
            self.memberships[key] = False
        elif action == "remove":
            self.memberships.pop(key, None)

    def _contact_row(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {"ID": contact["ID"], "Email": contact["Email"], "Name": contact["Name"]}

    def _bulk(self, request: FakeRequest, rest: list[str], list_id: int | None) -> FakeResponse | None:
        if request.method == "GET" and len(rest) == 1 and rest[0].isdigit():
            row = self.bulk.status(int(rest[0]))
            return _packet(200, [row]) if row else _error(404, "Object not found")
        if request.method != "POST" or rest:
            return _error(404, "Object not found")
        body = self._body(request)
        if isinstance(body, FakeResponse):
            return body
        allowed = {"Action", "Contacts"} if list_id is not None else {"ContactsLists", "Contacts"}
        unknown = [key for key in body if key not in allowed]
        if unknown:
            return _error(400, f'Invalid json input: object ""->"TContact" has no property "{unknown[0]}"')
        contacts = body.get("Contacts")
        if not isinstance(contacts, list) or not contacts:
            return _error(400, "Object properties invalid", {"Contacts": "MJ03 A non-empty value is required"})
        targets: list[tuple[int, str]] = []
        if list_id is not None:
            if body.get("Action") not in _ACTIONS:
                return _error(
                    400, "Object properties invalid", {"Action": f"Invalid action: {body.get('Action') or ''}"}
                )
            targets = [(list_id, body["Action"])]
        for entry in body.get("ContactsLists") or []:
            if int(entry.get("ListID", -1)) not in self.lists or entry.get("Action") not in _ACTIONS:
                return _error(400, "Object properties invalid", {"ContactsLists": "invalid list or action"})
            targets.append((int(entry["ListID"]), entry["Action"]))
        return self.bulk.submit(contacts, targets)  # per-contact errors land in the job, not here

    def _bulk_problems(self, contact: dict[str, Any]) -> dict[str, Any]:
        return self._validate_contact(contact, {"Email", "Name", "Properties", "IsExcludedFromCampaigns"})

    def _apply_bulk(self, contact: dict[str, Any], targets: list[tuple[int, str]]) -> None:
        stored = self._upsert(contact)
        for target_list, action in targets:
            self._apply_action(target_list, stored["Email"].lower(), action)


def _fits(datatype: str, value: Any) -> bool:
    if datatype == "str":
        return isinstance(value, str)
    if datatype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if datatype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if datatype == "bool":
        return isinstance(value, bool)
    if datatype == "datetime":
        if isinstance(value, int) and not isinstance(value, bool):
            return True
        if isinstance(value, str):
            try:
                datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return False
            return True
    return False

"""The fake vendors enforce what notes/vendor-apis.md §4 says the real APIs do.

Data-driven: each row is one request and what the real API would answer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from relay.fakes import FakeServer, Fault, MailgunFake, MailjetFake, RateLimit

MG_AUTH = ("api", "key-test")
MJ_AUTH = ("pub-test", "sec-test")
LIST = "news@mg.example.com"


@pytest.fixture()
def mailgun_server() -> Iterator[FakeServer]:
    with FakeServer(MailgunFake(lists=[LIST])) as server:
        yield server


@pytest.fixture()
def mailjet_server() -> Iterator[FakeServer]:
    with FakeServer(
        MailjetFake(
            lists=[10001],
            properties={"plan": "str", "score": "int", "ltv": "float", "vip": "bool", "joined": "datetime"},
        )
    ) as server:
        yield server


MAILGUN_CASES: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    # (id, request kwargs, status, expectations on the answer)
    (
        "auth-before-404",
        {"method": "POST", "path": "/v3/lists/nope@x.com/members", "auth": ("api", "bad")},
        401,
        {"text": "Forbidden", "content_type": "text/plain; charset=utf-8", "www": 'Basic realm="MG API"'},
    ),
    ("missing-auth", {"method": "POST", "path": f"/v3/lists/{LIST}/members", "auth": None}, 401, {"text": "Forbidden"}),
    ("wrong-username", {"method": "POST", "path": f"/v3/lists/{LIST}/members", "auth": ("user", "key-test")}, 401, {}),
    (
        "unknown-list",
        {"method": "POST", "path": "/v3/lists/nope@x.com/members", "data": {"address": "a@b.com"}},
        404,
        {"json_has": "message"},
    ),
    ("unknown-route-html-404", {"method": "GET", "path": "/v3/nothing/here"}, 404, {"content_type": "text/html"}),
    (
        "missing-address",
        {"method": "POST", "path": f"/v3/lists/{LIST}/members", "data": {"name": "x"}},
        400,
        {"json": {"message": "The 'address' parameter should be a valid email address"}},
    ),
    (
        "invalid-address",
        {"method": "POST", "path": f"/v3/lists/{LIST}/members", "data": {"address": "nope"}},
        400,
        {"json": {"message": "The 'address' parameter should be a valid email address"}},
    ),
    (
        "vars-not-object",
        {"method": "POST", "path": f"/v3/lists/{LIST}/members", "data": {"address": "a@b.com", "vars": "[1]"}},
        400,
        {"json_has": "message"},
    ),
    (
        "vars-bad-json",
        {"method": "POST", "path": f"/v3/lists/{LIST}/members", "data": {"address": "a@b.com", "vars": "{oops"}},
        400,
        {"json_has": "message"},
    ),
    (
        "bad-boolean",
        {"method": "POST", "path": f"/v3/lists/{LIST}/members", "data": {"address": "a@b.com", "subscribed": "maybe"}},
        400,
        {"json_has": "message"},
    ),
    (
        "create",
        {
            "method": "POST",
            "path": f"/v3/lists/{LIST}/members",
            "data": {"address": "Bob <bar@example.com>", "name": "Bob Bar", "vars": '{"age": 26}'},
        },
        200,
        {
            "json": {
                "member": {"address": "bar@example.com", "name": "Bob Bar", "subscribed": True, "vars": {"age": 26}},
                "message": "Mailing list member has been created",
            }
        },
    ),
    (
        "percent-encoded-list",
        {
            "method": "POST",
            "path": "/v3/lists/news%40mg.example.com/members",
            "data": {"address": "c@example.com", "vars": "null"},
        },
        200,
        {"json_path": ("member", "vars"), "equals": {}},
    ),
]


@pytest.mark.parametrize(
    ("request_spec", "status", "expect"), [c[1:] for c in MAILGUN_CASES], ids=[c[0] for c in MAILGUN_CASES]
)
def test_mailgun_fake(
    mailgun_server: FakeServer, request_spec: dict[str, Any], status: int, expect: dict[str, Any]
) -> None:
    spec = dict(request_spec)
    auth = spec.pop("auth", MG_AUTH)
    answer = requests.request(spec.pop("method"), mailgun_server.url + spec.pop("path"), auth=auth, timeout=5, **spec)
    _check(answer, status, expect)


MAILJET_CASES: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    (
        "auth-before-404",
        {"method": "POST", "path": "/v3/REST/contactslist/999/managecontact", "auth": ("x", "y")},
        401,
        {"text": "", "content_type": "text/html", "www": 'Basic realm="Provide an apiKey and secretKey"'},
    ),
    (
        "unknown-list",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/999/managecontact",
            "json": {"Email": "a@b.com", "Action": "addforce"},
        },
        404,
        {
            "json": {"ErrorInfo": "", "ErrorMessage": "Object not found", "StatusCode": 404},
            "reason": "Object not found",
        },
    ),
    (
        "non-numeric-list",
        {"method": "POST", "path": "/v3/REST/contactslist/abc/managecontact", "json": {}},
        404,
        {"reason": "Object not found"},
    ),
    (
        "case-insensitive-route",
        {
            "method": "POST",
            "path": "/v3/REST/ContactsList/10001/ManageContact",
            "json": {"Email": "a@b.com", "Action": "addnoforce"},
        },
        201,
        {"json_has": "Data"},
    ),
    (
        "empty-email-and-bad-action",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/10001/managecontact",
            "json": {"Email": "", "Action": "subscribe"},
        },
        400,
        {
            "json": {
                "ErrorInfo": {
                    "Email": "MJ08 Property email is invalid: MJ03 A non-empty value is required",
                    "Action": "Invalid action: subscribe",
                },
                "ErrorMessage": "Object properties invalid",
                "StatusCode": 400,
            },
            "reason": "Object properties invalid",
        },
    ),
    (
        "undefined-and-mistyped-properties",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/10001/managecontact",
            "json": {"Email": "a@b.com", "Action": "addforce", "Properties": {"nope": "x", "score": "12"}},
        },
        400,
        {
            "json_path": ("ErrorInfo", "Properties"),
            "equals": [{"nope": "Property not defined"}, {"score": "Property type does not match definition"}],
        },
    ),
    (
        "properties-as-string",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/10001/managecontact",
            "json": {"Email": "a@b.com", "Action": "addforce", "Properties": '{"plan": "x"}'},
        },
        400,
        {"json_has": "ErrorInfo"},
    ),
    (
        "unknown-top-level-field",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/10001/managecontact",
            "json": {"Email": "a@b.com", "Action": "addforce", "firstname": "A"},
        },
        400,
        {"json_has": "ErrorMessage"},
    ),
    (
        "typed-properties-ok",
        {
            "method": "POST",
            "path": "/v3/REST/contactslist/10001/managecontact",
            "json": {
                "Email": "nonçascii@example.com",
                "Action": "addforce",
                "Name": "N",
                "Properties": {"plan": "pro", "score": 3, "ltv": 9, "vip": True, "joined": "2018-01-01T00:00:00"},
            },
        },
        201,
        {"json_path": ("Data", 0, "Email"), "equals": "nonçascii@example.com"},
    ),
    ("unknown-resource-500", {"method": "GET", "path": "/v3/REST/wrongresourcepath"}, 500, {"json_has": "ErrorInfo"}),
    ("unknown-version-html-404", {"method": "GET", "path": "/v3.1/REST/contact"}, 404, {"content_type": "text/html"}),
    (
        "create-property",
        {
            "method": "POST",
            "path": "/v3/REST/contactmetadata",
            "json": {"Datatype": "str", "Name": "city", "NameSpace": "static"},
        },
        201,
        {"json_path": ("Data", 0, "Name"), "equals": "city"},
    ),
    (
        "create-property-bad-type",
        {"method": "POST", "path": "/v3/REST/contactmetadata", "json": {"Datatype": "text", "Name": "city"}},
        400,
        {"json_has": "ErrorInfo"},
    ),
]


@pytest.mark.parametrize(
    ("request_spec", "status", "expect"), [c[1:] for c in MAILJET_CASES], ids=[c[0] for c in MAILJET_CASES]
)
def test_mailjet_fake(
    mailjet_server: FakeServer, request_spec: dict[str, Any], status: int, expect: dict[str, Any]
) -> None:
    spec = dict(request_spec)
    auth = spec.pop("auth", MJ_AUTH)
    answer = requests.request(spec.pop("method"), mailjet_server.url + spec.pop("path"), auth=auth, timeout=5, **spec)
    _check(answer, status, expect)


def _check(answer: requests.Response, status: int, expect: dict[str, Any]) -> None:
    assert answer.status_code == status, answer.text
    if "text" in expect:
        assert answer.text == expect["text"]
    if "content_type" in expect:
        assert answer.headers["Content-Type"].startswith(expect["content_type"])
    if "www" in expect:
        assert answer.headers["WWW-Authenticate"] == expect["www"]
    if "reason" in expect:
        assert answer.reason == expect["reason"]
    if "json" in expect:
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == expect["json"]
    if "json_has" in expect:
        assert expect["json_has"] in answer.json()
    if "json_path" in expect:
        value: Any = answer.json()
        for step in expect["json_path"]:
            value = value[step]
        assert value == expect["equals"]


def post_member(server: FakeServer, **data: str) -> requests.Response:
    return requests.post(f"{server.url}/v3/lists/{LIST}/members", auth=MG_AUTH, data=data, timeout=5)


def test_mailgun_upsert_semantics(mailgun_server: FakeServer) -> None:
    assert post_member(mailgun_server, address="a@example.com", vars='{"plan": "pro", "company": "Acme"}').ok
    duplicate = post_member(mailgun_server, address="A@Example.com")
    assert duplicate.status_code == 400
    assert duplicate.json() == {"message": "Address already exists 'A@Example.com'"}
    updated = post_member(
        mailgun_server, address="a@example.com", upsert="yes", vars='{"last_page_url": "/x"}', subscribed="no"
    )
    assert updated.status_code == 200
    member = updated.json()["member"]
    assert member["vars"] == {"last_page_url": "/x"}  # replaced wholesale: the reason for read-before-write
    assert member["subscribed"] is False
    got = requests.get(f"{mailgun_server.url}/v3/lists/{LIST}/members/a@example.com", auth=MG_AUTH, timeout=5)
    assert got.json() == {"member": member}
    gone = requests.get(f"{mailgun_server.url}/v3/lists/{LIST}/members/zz@example.com", auth=MG_AUTH, timeout=5)
    assert gone.status_code == 404 and "not found" in gone.json()["message"]


def test_mailgun_multipart_and_bulk(mailgun_server: FakeServer) -> None:
    multipart = requests.post(
        f"{mailgun_server.url}/v3/lists/{LIST}/members",
        auth=MG_AUTH,
        timeout=5,
        files={"address": (None, "m@example.com"), "name": (None, "Multi Part")},
    )
    assert multipart.json()["member"]["name"] == "Multi Part"
    bulk = requests.post(
        f"{mailgun_server.url}/v3/lists/{LIST}/members.json",
        auth=MG_AUTH,
        timeout=5,
        data={"members": json.dumps(["m@example.com", {"address": "n@example.com", "vars": {"a": 1}}]), "upsert": "no"},
    )
    assert bulk.json()["message"] == "Mailing list has been updated"
    assert bulk.json()["list"]["members_count"] == 2  # the duplicate was skipped silently


def test_mailjet_contact_semantics(mailjet_server: FakeServer) -> None:
    vendor = mailjet_server.vendor
    assert isinstance(vendor, MailjetFake)

    def manage(action: str, **props: Any) -> requests.Response:
        return requests.post(
            f"{mailjet_server.url}/v3/REST/contactslist/10001/managecontact",
            auth=MJ_AUTH,
            json={"Email": "a@example.com", "Action": action, "Properties": props},
            timeout=5,
        )

    assert manage("addnoforce", plan="pro", score=1).status_code == 201
    assert manage("unsub", score=None).status_code == 201
    contact = vendor.contact("a@example.com")
    assert contact is not None
    assert contact["Properties"] == {"plan": "pro"}  # merged key by key; null unsets
    assert contact["Lists"] == {"10001": "unsubscribed"}
    manage("addnoforce")
    assert vendor.contact("a@example.com")["Lists"] == {"10001": "unsubscribed"}  # type: ignore[index]
    manage("addforce")
    assert vendor.contact("a@example.com")["Lists"] == {"10001": "subscribed"}  # type: ignore[index]
    manage("remove")
    assert vendor.contact("a@example.com")["Lists"] == {}  # type: ignore[index]


def test_rate_limits_have_each_vendors_shape() -> None:
    with FakeServer(MailgunFake(lists=[LIST]), rate_limit=RateLimit(1, window=60)) as server:
        post_member(server, address="a@example.com")
        limited = post_member(server, address="b@example.com")
        assert limited.status_code == 429
        assert limited.json() == {"message": "Too Many Requests"}
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(limited.headers)
        assert "Retry-After" not in limited.headers
    with FakeServer(MailjetFake(lists=[10001]), rate_limit=RateLimit(1, window=60)) as server:
        url = f"{server.url}/v3/REST/contactslist/10001"
        requests.get(url, auth=MJ_AUTH, timeout=5)
        limited = requests.get(url, auth=MJ_AUTH, timeout=5)
        assert limited.status_code == 429
        assert limited.headers["Content-Type"] == "text/html" and "<h1>429" in limited.text
        assert not {"Retry-After", "X-RateLimit-Reset"} & set(limited.headers)


def test_fault_injection(mailgun_server: FakeServer) -> None:
    mailgun_server.inject(Fault("status", status=503, times=2))
    assert [post_member(mailgun_server, address="a@example.com").status_code for _ in range(3)] == [503, 503, 200]
    mailgun_server.inject(Fault("drop"))
    with pytest.raises(requests.ConnectionError):
        post_member(mailgun_server, address="b@example.com")
    mailgun_server.inject(Fault("delay", seconds=0.5))
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{mailgun_server.url}/v3/lists/{LIST}/members", auth=MG_AUTH, data={"address": "c@x.com"}, timeout=(2, 0.1)
        )
    statuses = [entry["status"] for entry in mailgun_server.requests("POST")]
    assert statuses[:4] == [503, 503, 200, "dropped"]


def test_admin_endpoints(mailgun_server: FakeServer) -> None:
    post_member(mailgun_server, address="a@example.com")
    state = requests.get(f"{mailgun_server.url}/_fake/state", timeout=5).json()
    assert state[LIST]["members"][0]["address"] == "a@example.com"
    log = requests.get(f"{mailgun_server.url}/_fake/log", timeout=5).json()
    assert log[0]["path"] == f"/v3/lists/{LIST}/members"
    requests.post(f"{mailgun_server.url}/_fake/faults", json={"kind": "status", "status": 500}, timeout=5)
    assert post_member(mailgun_server, address="b@example.com").status_code == 500


def test_fake_listens_on_loopback_only(mailgun_server: FakeServer) -> None:
    assert mailgun_server.url.startswith("http://127.0.0.1:")
    with socket.create_connection(("127.0.0.1", mailgun_server.port), timeout=2):
        pass

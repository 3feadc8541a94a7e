"""The vendors' official Python SDKs drive the fakes. If an SDK and a fake disagree, the fake is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mailjet_rest
import pytest
from mailgun.client import Client as MailgunClient

from relay.fakes import FakeServer, MailgunFake, MailjetFake

LIST = "news@mg.example.com"


@pytest.fixture()
def mailgun() -> Iterator[tuple[FakeServer, MailgunClient]]:
    with (
        FakeServer(MailgunFake(api_key="key-sdk", lists=[LIST])) as server,
        MailgunClient(auth=("api", "key-sdk"), api_url=server.url) as client,
    ):
        yield server, client


@pytest.fixture()
def mailjet() -> Iterator[tuple[FakeServer, Any]]:
    with FakeServer(MailjetFake(api_key="pub", secret_key="sec", lists=[10001])) as server:
        yield server, mailjet_rest.Client(auth=("pub", "sec"), api_url=server.url + "/", version="v3")


def test_mailgun_sdk_member_lifecycle(mailgun: tuple[FakeServer, MailgunClient]) -> None:
    server, client = mailgun
    created = client.lists_members.create(
        domain="mg.example.com",
        address=LIST,
        data={
            "subscribed": True,
            "address": "bar@example.com",
            "name": "Bob Bar",
            "description": "Developer",
            "vars": '{"age": 26}',
        },
    )
    assert created.status_code == 200
    assert created.json() == {
        "member": {"address": "bar@example.com", "name": "Bob Bar", "subscribed": True, "vars": {"age": 26}},
        "message": "Mailing list member has been created",
    }
    updated = client.lists_members.put(
        domain="mg.example.com",
        address=LIST,
        member_address="bar@example.com",
        data={"name": "Bob 2", "vars": '{"age": 28}', "subscribed": False},
    )
    assert updated.json()["member"] == {
        "address": "bar@example.com",
        "name": "Bob 2",
        "subscribed": False,
        "vars": {"age": 28},
    }
    fetched = client.lists_members.get(domain="mg.example.com", address=LIST, member_address="bar@example.com")
    assert fetched.json() == {"member": updated.json()["member"]}
    bulk = client.lists_members.create(
        domain="mg.example.com",
        address=LIST,
        multiple=True,
        data={"upsert": True, "members": '[{"address": "Alice <alice@example.com>", "vars": {"age": 26}}]'},
    )
    assert bulk.json()["list"]["members_count"] == 2
    listing = client.lists.get(domain="mg.example.com", address=LIST)
    assert listing.json()["list"]["address"] == LIST
    deleted = client.lists_members.delete(domain="mg.example.com", address=LIST, member_address="bar@example.com")
    assert deleted.json()["message"] == "Mailing list member has been deleted"
    assert server.requests("POST")[0]["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_mailgun_sdk_sees_vendor_errors(mailgun: tuple[FakeServer, MailgunClient]) -> None:
    server, _ = mailgun
    with MailgunClient(auth=("api", "wrong"), api_url=server.url) as bad:
        refused = bad.lists_members.create(domain="mg.example.com", address=LIST, data={"address": "x@example.com"})
    assert (refused.status_code, refused.text) == (401, "Forbidden")
    _, client = mailgun
    missing = client.lists_members.create(
        domain="mg.example.com", address="none@mg.example.com", data={"address": "x@example.com"}
    )
    assert missing.status_code == 404 and "message" in missing.json()
    invalid = client.lists_members.create(domain="mg.example.com", address=LIST, data={"address": "nope"})
    assert invalid.status_code == 400
    assert invalid.json() == {"message": "The 'address' parameter should be a valid email address"}


def test_mailjet_sdk_managecontact_and_metadata(mailjet: tuple[FakeServer, Any]) -> None:
    server, client = mailjet
    created = client.contactmetadata.create(data={"Datatype": "str", "Name": "plan", "NameSpace": "static"})
    assert created.status_code == 201 and created.json()["Data"][0]["Name"] == "plan"
    managed = client.contactslist_managecontact.create(
        id=10001,
        data={
            "Email": "a@example.com",
            "Action": "addnoforce",
            "Name": "A",
            "Properties": {"first_name": "A", "plan": "pro"},
        },
    )
    assert managed.status_code == 201
    row = managed.json()["Data"][0]
    assert {k: row[k] for k in ("Email", "Action", "Name", "Properties")} == {
        "Email": "a@example.com",
        "Action": "addnoforce",
        "Name": "A",
        "Properties": {"first_name": "A", "plan": "pro"},
    }
    names = {m["Name"] for m in client.contactmetadata.get().json()["Data"]}
    assert {"first_name", "last_name", "plan"} <= names
    assert server.requests("POST")[1]["path"] == "/v3/REST/contactslist/10001/managecontact"


def test_mailjet_sdk_sees_vendor_errors(mailjet: tuple[FakeServer, Any]) -> None:
    server, client = mailjet
    undefined = _call(
        lambda: client.contactslist_managecontact.create(
            id=10001, data={"Email": "a@example.com", "Action": "addforce", "Properties": {"nope": 1}}
        )
    )
    assert undefined == 400
    missing = _call(
        lambda: client.contactslist_managecontact.create(id=999, data={"Email": "a@example.com", "Action": "addforce"})
    )
    assert missing == 404
    bad = mailjet_rest.Client(auth=("pub", "wrong"), api_url=server.url + "/", version="v3")
    assert _call(lambda: bad.contactslist.get(id=10001)) == 401


def _call(request: Any) -> int:
    """The status an SDK call saw, whether the SDK returns the response or raises for it."""
    try:
        return int(request().status_code)
    except Exception as exc:  # SDK versions differ: some raise typed errors carrying the response
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None) or getattr(exc, "status_code", None)
        assert status is not None, f"SDK raised without a status: {exc!r}"
        return int(status)

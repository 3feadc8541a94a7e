"""The two examples in the integration pages (seeds 000 and 001) render as shown there."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import relay
from relay import CompiledPreset

# Seed 000, "Example": datafly.identify("user-123", {...}); consent granted, anonymous id a1b2c3.
MAILGUN_EVENT = {
    "type": "identify",
    "userId": "user-123",
    "anonymousId": "a1b2c3",
    "traits": {
        "email": "Jane@Example.com",
        "name": "Jane Doe",
        "first_name": "Jane",
        "last_name": "Doe",
        "plan": "pro",
        "company": "Acme Ltd",
    },
    "context": {"consent": {"canonical": {"marketing": True}}},
}
MAILGUN_EXPECTED = {
    "address": "jane@example.com",
    "name": "Jane Doe",
    "subscribed": "true",
    "upsert": "true",
    "vars": {"first_name": "Jane", "last_name": "Doe", "plan": "pro", "company": "Acme Ltd", "anonymous_id": "a1b2c3"},
}

# Seed 001, "Example": datafly.track("Signed Up", {method: "email"}, {traits: {...}}) with consent granted.
MAILJET_EVENT = {
    "type": "track",
    "event": "Signed Up",
    "properties": {"method": "email"},
    "context": {
        "traits": {"email": "jane.doe@example.com", "first_name": "Jane", "last_name": "Doe"},
        "consent": {"canonical": {"marketing": True}},
    },
}
MAILJET_EXPECTED_TEXT = """{
  "Email": "jane.doe@example.com",
  "Name": "Jane Doe",
  "Action": "addforce",
  "Properties": {
    "first_name": "Jane",
    "last_name": "Doe",
    "signup_method": "email"
  }
}"""


def test_mailgun_seed_example(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"api_key": "key-x", "list_address": "newsletter@mg.example.com"}, environ={})
    request = relay.render(mailgun, MAILGUN_EVENT, settings).request
    assert request is not None
    assert request.method == "POST"
    assert request.url == "https://api.mailgun.net/v3/lists/newsletter@mg.example.com/members"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic YXBpOmtleS14"  # base64("api:key-x")
    fields = dict(parse_qsl(request.content.decode()))
    assert set(fields) == set(MAILGUN_EXPECTED)
    decoded = {**fields, "vars": json.loads(fields["vars"])}
    assert decoded == MAILGUN_EXPECTED


def test_mailjet_seed_example_is_byte_exact(mailjet: CompiledPreset) -> None:
    settings = mailjet.resolve_settings({"api_key": "pub", "secret_key": "sec", "list_id": 10001}, environ={})
    request = relay.render(mailjet, MAILJET_EVENT, settings).request
    assert request is not None
    assert request.url == "https://api.mailjet.com/v3/REST/contactslist/10001/managecontact"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == json.dumps(json.loads(MAILJET_EXPECTED_TEXT), separators=(",", ":")).encode()
    assert json.dumps(request.body, indent=2) == MAILJET_EXPECTED_TEXT

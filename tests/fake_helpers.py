"""Helpers for the data-driven tests of the stateful vendor fakes (tests/test_fakes_*.py).

A case is one request and what the real API would answer: ``Case(id, method, path, status,
expect, **request)``; ``expect`` holds ``at`` (dotted paths into the JSON answer and their
values), ``json`` (the whole answer), ``headers`` (a subset), ``content_type`` and ``contains``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from relay.fakes import FakeServer

__all__ = ["Case", "at", "call", "check", "run_case"]


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    expect: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)  # requests' keyword arguments
    #: Changes the vendor before the request (seeds state, injects a fault).
    before: Callable[[Any], None] | None = None


def call(server: FakeServer, method: str, path: str, **request: Any) -> requests.Response:
    return requests.request(method, server.url + path, timeout=5, **request)


def at(value: Any, dotted: str) -> Any:
    for step in dotted.split("."):
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value


def check(answer: requests.Response, status: int, expect: dict[str, Any]) -> None:
    assert answer.status_code == status, answer.text
    if "json" in expect:
        assert answer.json() == expect["json"]
    for dotted, wanted in expect.get("at", {}).items():
        assert at(answer.json(), dotted) == wanted, (dotted, answer.json())
    for name, wanted in expect.get("headers", {}).items():
        assert answer.headers.get(name) == wanted, (name, dict(answer.headers))
    if "content_type" in expect:
        assert answer.headers.get("Content-Type", "").startswith(expect["content_type"]), answer.headers
    if "contains" in expect:
        assert expect["contains"] in answer.text, answer.text
    if "empty" in expect:
        assert answer.content == b""


def run_case(vendor: Any, case: Case, defaults: dict[str, Any]) -> requests.Response:
    """Serve ``vendor``, apply ``case.before``, send the case's request (over ``defaults``), check it."""
    if case.before is not None:
        case.before(vendor)
    with FakeServer(vendor) as server:
        request = {**defaults, **case.request}
        if "headers" in defaults and "headers" in case.request:
            request["headers"] = {**defaults["headers"], **case.request["headers"]}
        request = {k: v for k, v in request.items() if v is not None}
        answer = call(server, case.method, case.path, **request)
    check(answer, case.status, case.expect)
    return answer

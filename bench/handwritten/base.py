"""What every hand-written integration shares: field picking, the checks, encoding, the request.

A hand-written integration does what a careful engineer writes by hand for one destination, and
no less than relay does for it:

- it picks the fields, applies the rules and builds the body;
- it checks the email with email-validator (cached, as relay caches it) and the body against the
  destination's request schema. The schema is compiled once, with fastjsonschema: the fastest
  JSON Schema validator in Python, and the same schema file relay checks against, so the two can
  never disagree on a constraint. A check written out by hand per constraint would have to be
  kept in step with the schema by hand;
- it builds the headers and the auth: Content-Type, Basic, Bearer, api-key, a signature;
- it returns the same object relay does: a ``relay.Request`` (method, URL, headers, decoded body,
  encoded bytes, encoding, credential headers).

What depends on settings only (the auth header, the URL) is worked out once, when the
integration is made, as a hand-written integration would. Nothing is shared with relay's engine
but the ``Request`` class it returns.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable
from urllib.parse import quote, urlencode

import fastjsonschema

from relay import Request
from relay.bundled import schemas_dir

__all__ = [
    "FORM",
    "JSON",
    "Drop",
    "Integration",
    "Outcome",
    "Path",
    "ReadsBeforeWrite",
    "Send",
    "basic_auth",
    "form_content",
    "json_content",
    "json_request",
    "keep",
    "number",
    "path_segment",
    "pick",
    "schema_check",
    "to_json",
    "valid_email",
    "walk",
]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Path = tuple[str, ...]
_PATH_SAFE = "@:!$&'()*+,;=-._~"  # RFC 3986: these may stand in a path segment as they are
_INTEGER = re.compile(r"[+-]?\d+")
#: Built once: ``json.dumps`` with options makes a new encoder on every call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Drop(NamedTuple):
    """The event is not sent. ``rule`` is the preset's name for why, so the bench can compare."""

    rule: str


class Send(NamedTuple):
    """The requests an event makes, in order (a read-before-write destination's GET first)."""

    requests: tuple[Request, ...]


Outcome = Drop | Send


class Integration:
    """One destination written by hand. Make it once with the settings; ``render`` each event."""

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    def render(self, event: Any, now: float) -> Outcome:
        """The request for ``event`` (or why it is dropped); ``now`` stamps signatures."""
        raise NotImplementedError


@runtime_checkable
class ReadsBeforeWrite(Protocol):
    """A destination that reads before it writes, split as relay's delivery runs it: ``plan``
    (decide), ``lookup`` (the GET to send first), ``build`` (the write, from the lookup's answer)."""

    def plan(self, event: Any) -> Any: ...

    def lookup(self, plan: Any) -> Request: ...

    def build(self, plan: Any, existing: Any) -> Request: ...

    def send(self, plan: Any, existing: Any) -> Send: ...


def keep(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is null: a field that renders to null is left out."""
    if value is not None:
        target[key] = value


def walk(value: Any, path: Path) -> Any:
    """``a.b.c`` the way JMESPath reads it: null as soon as a step is not an object."""
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def pick(event: Any, paths: tuple[Path, ...]) -> Any:
    """The first of ``paths`` that is not null."""
    for path in paths:
        value = walk(event, path)
        if value is not None:
            return value
    return None


def number(value: Any) -> Any:
    """A number, or a numeric string as a number; anything else fails (never a silent 0)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        parsed = float(text)
        if not math.isfinite(parsed):
            raise ValueError("not a finite number")
        return parsed
    raise ValueError("not a number")


@lru_cache(maxsize=65536)
def _email_verdict(address: str) -> bool:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def valid_email(value: Any) -> bool:
    """email-validator's syntax check, no DNS; cached per address, as a stream repeats contacts."""
    return isinstance(value, str) and bool(value) and _email_verdict(value)


def path_segment(value: Any) -> str:
    return quote(str(value), safe=_PATH_SAFE)


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def to_json(value: Any) -> str:
    """Compact JSON, unicode kept as it is."""
    return _encode_json(value)


def json_content(body: Any) -> bytes:
    return _encode_json(body).encode("utf-8")


def form_content(fields: dict[str, str]) -> bytes:
    return urlencode(list(fields.items())).encode("ascii")


def schema_check(relative: str) -> Callable[[Any], Any]:
    """The request schema under relay's bundled ``schemas/``, compiled once; the returned check
    raises ``fastjsonschema.JsonSchemaException`` for a body the destination would refuse."""
    schema = json.loads((schemas_dir() / relative).read_text(encoding="utf-8"))
    return fastjsonschema.compile(schema)


def json_request(
    step: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any,
    credentials: frozenset[str],
    role: str = "write",
) -> Request:
    """A JSON request of one step, as relay builds it."""
    return Request(
        method=method,
        url=url,
        headers=dict(headers),
        body=body,
        content=json_content(body),
        encoding="json",
        credential_headers=credentials,
        step=step,
        role=role,
    )

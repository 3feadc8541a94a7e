"""What the runtime produces: a Plan (what to do with an event), a Request, a Decision.

``decide`` makes a Plan: a drop with its reason, or the template scope the
request is built from. ``build`` turns a Plan into the exact Request. A Decision
is the reviewable pair of both, which goldens pin and ``relay render`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["REDACTED", "Decision", "Plan", "Request", "Trace", "redact"]

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Request:
    """One HTTP request, fully rendered. ``body`` is decoded (a form is a dict of strings)."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    content: bytes
    encoding: str
    #: Header names whose whole value is a credential (e.g. Authorization).
    credential_headers: frozenset[str] = frozenset()

    def to_dict(self, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
        """The reviewable form: method, URL, headers and decoded body, secrets redacted."""
        headers = {}
        for name, value in self.headers.items():
            if name in self.credential_headers:
                scheme, _, rest = value.partition(" ")
                headers[name] = f"{scheme} {REDACTED}" if rest else REDACTED
            else:
                headers[name] = value
        view = {"method": self.method, "url": self.url, "headers": headers, "body": self.body}
        return redact(view, secrets)  # type: ignore[no-any-return]


@dataclass
class Trace:
    """Why the decision came out as it did."""

    selectors: dict[str, str | None] = field(default_factory=dict)
    mapping: str | None = None
    rules: list[dict[str, str]] = field(default_factory=list)
    #: Which request was used: "default", or the name of the variant a rule or setting chose.
    request: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"selectors": self.selectors, "mapping": self.mapping, "rules": self.rules, "request": self.request}


@dataclass(frozen=True)
class Plan:
    """What to do with one event, decided without I/O, a clock or randomness.

    A drop carries its reason and rule. A send carries ``context``: the template
    scope (selectors, variables, fields, settings...) the request is built from.
    """

    action: Literal["send", "drop"]
    reason: str | None
    rule: str | None
    trace: Trace
    secrets: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    #: Events with equal keys must be delivered in input order (``delivery.order_by``).
    order_key: str | None = None
    #: How errors name the event (its line or messageId), never a value from it.
    event_ref: str = ""


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "drop"]
    reason: str | None
    rule: str | None
    request: Request | None
    trace: Trace
    secrets: tuple[str, ...] = ()
    #: A read-before-write request to send first (presets with ``request.lookup``).
    lookup: Request | None = None
    #: Events with equal keys must be delivered in input order (``delivery.order_by``).
    order_key: str | None = None

    @property
    def mapping(self) -> str | None:
        return self.trace.mapping

    def to_dict(self, *, trace: bool = False) -> dict[str, Any]:
        """``{"decision", "reason", "rule", "request"}``, secrets redacted: the golden/JSON form."""
        out: dict[str, Any] = {
            "decision": self.action,
            "reason": self.reason,
            "rule": self.rule,
            "request": self.request.to_dict(self.secrets) if self.request else None,
        }
        if self.lookup is not None:
            out["lookup"] = self.lookup.to_dict(self.secrets)
        if trace:
            out["trace"] = redact(self.trace.to_dict(), self.secrets)
        return out


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """Replace every occurrence of a secret value in strings anywhere in ``value``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value

"""What the runtime produces: a Plan (what to do with an event), Requests, a Decision.

``decide`` makes a Plan: a drop with its reason, or the template scope the
requests are built from. ``build`` turns a Plan into the exact Request of one
step. A Decision is the reviewable whole, which goldens pin and ``relay render``
prints: the decision and every request the event makes, in order.
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
    #: The request (step) of the preset this is, and its role: read, write or track.
    step: str = ""
    role: str = "write"

    def to_dict(self, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
        """The reviewable form: step, method, URL, headers and decoded body, secrets redacted."""
        headers = {}
        for name, value in self.headers.items():
            if name in self.credential_headers:
                scheme, _, rest = value.partition(" ")
                headers[name] = f"{scheme} {REDACTED}" if rest else REDACTED
            else:
                headers[name] = value
        view = {"step": self.step, "method": self.method, "url": self.url, "headers": headers, "body": self.body}
        return redact(view, secrets)  # type: ignore[no-any-return]


@dataclass
class Trace:
    """Why the decision came out as it did."""

    selectors: dict[str, str | None] = field(default_factory=dict)
    mapping: str | None = None
    rules: list[dict[str, str]] = field(default_factory=list)
    #: Each request of the preset: built, or skipped because its `when` was false.
    steps: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"selectors": self.selectors, "mapping": self.mapping, "rules": self.rules, "steps": self.steps}


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
    #: Every request the event makes, in order (none for a drop).
    requests: tuple[Request, ...]
    trace: Trace
    secrets: tuple[str, ...] = ()
    #: Events with equal keys must be delivered in input order (``delivery.order_by``).
    order_key: str | None = None

    @property
    def mapping(self) -> str | None:
        return self.trace.mapping

    @property
    def request(self) -> Request | None:
        """The last request: for most presets, the one that writes."""
        return self.requests[-1] if self.requests else None

    def to_dict(self, *, trace: bool = False) -> dict[str, Any]:
        """``{"decision", "reason", "rule", "requests"}``, secrets redacted: the golden/JSON form."""
        out: dict[str, Any] = {
            "decision": self.action,
            "reason": self.reason,
            "rule": self.rule,
            "requests": [request.to_dict(self.secrets) for request in self.requests],
        }
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

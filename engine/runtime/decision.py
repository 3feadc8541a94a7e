"""What the runtime produces: a Plan (what to do with an event), Requests, a Decision.

``decide`` makes a Plan: a drop with its reason, or the template scope the
requests are built from. ``build`` turns a Plan into the exact Request of one
step. A Decision is the reviewable whole, which goldens pin and ``relay render``
prints: the decision and every request the event makes, in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote_plus

from ..expr.templates import REDACTED

__all__ = ["REDACTED", "Decision", "Plan", "Request", "Review", "Trace", "redact"]

#: Where a request holds a value derived from a secret, e.g. ("body", "key") or ("url",),
#: and what a review shows there instead.
Review = tuple[tuple[tuple[str | int, ...], Any], ...]


@dataclass(frozen=True, init=False)
class Request:
    """One HTTP request, fully rendered. ``body`` is decoded (a form is a dict of strings)."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    content: bytes
    encoding: str
    #: Header names whose value is a credential (e.g. Authorization): hidden in reviews.
    credential_headers: frozenset[str] = frozenset()
    #: The request (step) of the preset this is, and its role: read, write or track.
    step: str = ""
    role: str = "write"
    #: Where the request holds values derived from secret settings, and what reviews show there
    #: (or how to work that out, when a review asks: sending needs none). How it is shown, not
    #: what is sent: two requests that send the same bytes are equal.
    review: Review | Callable[[], Review] = field(default=(), compare=False)

    def __init__(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        content: bytes,
        encoding: str,
        credential_headers: frozenset[str] = frozenset(),
        step: str = "",
        role: str = "write",
        review: Review | Callable[[], Review] = (),
    ) -> None:
        # Frozen, but filled in directly: a frozen dataclass's own __init__ calls
        # object.__setattr__ for each field, half the cost of an object made for every event.
        fill = self.__dict__
        fill["method"], fill["url"], fill["headers"], fill["body"] = method, url, headers, body
        fill["content"], fill["encoding"], fill["credential_headers"] = content, encoding, credential_headers
        fill["step"], fill["role"], fill["review"] = step, role, review

    def to_dict(self) -> dict[str, Any]:
        """The reviewable form: step, method, URL, headers and decoded body, with secrets
        redacted by their place in the request (the credential, and every value a template
        derived from a secret setting), never by searching the text."""
        # A credential header is hidden whole unless the review says more (``Basic <redacted>``).
        headers = {name: REDACTED if name in self.credential_headers else value for name, value in self.headers.items()}
        view = {"step": self.step, "method": self.method, "url": self.url, "headers": headers, "body": self.body}
        review = self.review() if callable(self.review) else self.review
        for path, shown in review:
            if path[0] in view:
                view[str(path[0])] = _replaced(view[str(path[0])], path[1:], shown)
        return view


def _replaced(value: Any, path: tuple[str | int, ...], shown: Any) -> Any:
    """``value`` with what is at ``path`` replaced by ``shown``, copying only along the path.

    Where the path ends early (a mapping the request encoded into one form field or
    header), the value that holds it is replaced as a whole; where it is missing (a
    leaf left out as null), nothing is.
    """
    if not path or not isinstance(value, (dict, list)):
        return shown if value is not None else None
    key = path[0]
    if isinstance(value, dict) and key in value:
        return {**value, key: _replaced(value[key], path[1:], shown)}
    if isinstance(value, list) and isinstance(key, int) and key < len(value):
        return [*value[:key], _replaced(value[key], path[1:], shown), *value[key + 1 :]]
    return value


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


@dataclass(frozen=True, init=False)
class Plan:
    """What to do with one event, decided without I/O, a clock or randomness.

    A drop carries its reason and rule. A send carries ``context``: the template
    scope (selectors, variables, fields, settings...) the request is built from.
    """

    action: Literal["send", "drop"]
    reason: str | None
    rule: str | None
    #: Why, when asked for (``decide(..., trace=True)``): reviews want it, delivery does not.
    trace: Trace | None
    secrets: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    #: Events with equal keys must be delivered in input order (``delivery.order_by``).
    order_key: str | None = None
    #: How errors name the event (its line or messageId), never a value from it.
    event_ref: str = ""
    #: The values of the preset fixed for this run (its settings-only parts), for ``build``.
    fixed: tuple[Any, ...] = field(default=(), repr=False)
    #: The mapping chosen (None: no mapping took the event).
    mapping: str | None = None

    def __init__(
        self,
        action: Literal["send", "drop"],
        reason: str | None,
        rule: str | None,
        trace: Trace | None,
        secrets: tuple[str, ...] = (),
        context: dict[str, Any] | None = None,
        order_key: str | None = None,
        event_ref: str = "",
        fixed: tuple[Any, ...] = (),
        mapping: str | None = None,
    ) -> None:
        fill = self.__dict__  # frozen, filled in directly (see Request)
        fill["action"], fill["reason"], fill["rule"], fill["trace"], fill["secrets"] = (
            action,
            reason,
            rule,
            trace,
            secrets,
        )
        fill["context"] = {} if context is None else context
        fill["order_key"], fill["event_ref"], fill["fixed"], fill["mapping"] = order_key, event_ref, fixed, mapping


@dataclass(frozen=True, init=False)
class Decision:
    action: Literal["send", "drop"]
    reason: str | None
    rule: str | None
    #: Every request the event makes, in order (none for a drop).
    requests: tuple[Request, ...]
    #: Why (None unless asked for: ``render(..., trace=True)``).
    trace: Trace | None
    secrets: tuple[str, ...] = ()
    #: Events with equal keys must be delivered in input order (``delivery.order_by``).
    order_key: str | None = None
    #: The mapping chosen (None: no mapping took the event).
    mapping: str | None = None

    def __init__(
        self,
        action: Literal["send", "drop"],
        reason: str | None,
        rule: str | None,
        requests: tuple[Request, ...],
        trace: Trace | None,
        secrets: tuple[str, ...] = (),
        order_key: str | None = None,
        mapping: str | None = None,
    ) -> None:
        fill = self.__dict__  # frozen, filled in directly (see Request)
        fill["action"], fill["reason"], fill["rule"], fill["requests"] = action, reason, rule, requests
        fill["trace"], fill["secrets"], fill["order_key"], fill["mapping"] = trace, secrets, order_key, mapping

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
            "requests": [request.to_dict() for request in self.requests],
        }
        if trace and self.trace is not None:
            out["trace"] = self.trace.to_dict()  # paths and names from the preset: no values
        return out


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """Free text that may echo a secret (a vendor's error body, an exception message),
    with each secret replaced wherever it stands as a whole word, in one pass.

    A secret is matched only where it is not part of a longer word, so a short secret
    (``e``) does not turn ``example.com`` into ``<redacted>xampl<redacted>.com``: vendors
    echo a key between quotes, spaces or punctuation. Strings inside lists and mappings
    are redacted too. Requests are never redacted this way (see ``Request.to_dict``).
    """
    if not secrets:
        return value
    if isinstance(value, str):
        pattern = _secret_pattern(secrets)
        return pattern.sub(REDACTED, value) if pattern is not None else value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


@lru_cache(maxsize=64)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    # Each secret as written and as it appears in a URL; longest first, so that a secret
    # containing another is replaced whole. A word boundary is required only on a side
    # where the secret begins or ends with a letter or digit.
    forms = {form for secret in secrets if secret for form in (secret, quote_plus(secret))}
    if not forms:
        return None
    alternatives = [
        ("(?<!\\w)" if _WORD.match(form[0]) else "") + re.escape(form) + ("(?!\\w)" if _WORD.match(form[-1]) else "")
        for form in sorted(forms, key=len, reverse=True)
    ]
    return re.compile("|".join(alternatives))


_WORD = re.compile(r"\w")

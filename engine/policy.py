"""Compiled delivery policy: response classification, retries, rate, ordering, checks.

Everything here is declared in the preset's ``delivery``, ``request.lookup`` and
``check`` sections; nothing is specific to a vendor.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .templating import Renderer

__all__ = [
    "CheckSpec",
    "Classification",
    "DeliveryPolicy",
    "LookupSpec",
    "ResponseRule",
    "SubRequestSpec",
    "parse_body",
    "status_matcher",
]

#: Statuses a transport reports when there is no HTTP answer at all.
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
Status = int | str


def status_matcher(pattern: int | str) -> Callable[[Status], bool]:
    """``404``, ``"4xx"``, ``"500-504"``, ``"timeout"`` or ``"connection_error"``."""
    if isinstance(pattern, int):
        return lambda status: status == pattern
    if pattern in (TIMEOUT, CONNECTION_ERROR):
        return lambda status: status == pattern
    if pattern.endswith("xx"):
        hundred = int(pattern[0])
        return lambda status: isinstance(status, int) and status // 100 == hundred
    if "-" in pattern:
        low, high = (int(p) for p in pattern.split("-"))
        return lambda status: isinstance(status, int) and low <= status <= high
    exact = int(pattern)
    return lambda status: status == exact


def parse_body(content: bytes, content_type: str) -> Any:
    """The JSON body, or None when the answer is not JSON (HTML 429s, plain 'Forbidden')."""
    if not content:
        return None
    if "json" not in content_type and not content.lstrip().startswith((b"{", b"[")):
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


@dataclass(frozen=True)
class ResponseRule:
    matches: Callable[[Status], bool]
    when: Renderer | None
    outcome: str
    hint: Renderer | None


@dataclass(frozen=True)
class Classification:
    outcome: str  # success | retry | fail
    message: str
    hint: str | None


_DEFAULT_RULES = (
    ResponseRule(status_matcher("2xx"), None, "success", None),
    ResponseRule(status_matcher(429), None, "retry", None),
    ResponseRule(status_matcher("5xx"), None, "retry", None),
    ResponseRule(status_matcher(TIMEOUT), None, "retry", None),
    ResponseRule(status_matcher(CONNECTION_ERROR), None, "retry", None),
)


@dataclass(frozen=True)
class DeliveryPolicy:
    order_by: Renderer | None
    responses: tuple[ResponseRule, ...]
    error_message: tuple[Callable[[Any], Any], ...]
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    rate: float | None = None
    burst: int = 1
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def classify(
        self, status: Status, answer: Callable[[], tuple[Any, str]], context: Mapping[str, Any]
    ) -> Classification:
        """First matching declared rule, then the defaults; anything else is permanent.

        ``answer`` gives (parsed JSON body or None, text) and is called only when a
        rule's condition or hint, or a failure message, needs it: a plain 2xx parses nothing.
        """
        scope: dict[str, Any] | None = None

        def full_scope() -> dict[str, Any]:
            nonlocal scope
            if scope is None:
                body, text = answer()
                scope = {**context, "status": status, "response": body, "text": text}
            return scope

        for rule in (*self.responses, *_DEFAULT_RULES):
            if not rule.matches(status):
                continue
            if rule.when is not None and not _safely(rule.when, full_scope()):
                continue
            if rule.outcome == "success" and rule.hint is None:
                return Classification("success", "", None)
            hint = _safely(rule.hint, full_scope()) if rule.hint is not None else None
            found = full_scope()
            message = self.vendor_message(status, found["response"], found["text"])
            return Classification(rule.outcome, message, " ".join(str(hint).split()) if hint else None)
        found = full_scope()
        return Classification("fail", self.vendor_message(status, found["response"], found["text"]), None)

    def vendor_message(self, status: Status, body: Any, text: str) -> str:
        if isinstance(status, str):
            return text or status.replace("_", " ")
        if body is not None:
            for search in self.error_message:
                found = search(body)
                if found:
                    return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)
            return json.dumps(body, ensure_ascii=False)[:500]
        return text.strip()[:500] or "(empty body)"

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter: uniform(0, min(max, base * 2**attempt))."""
        return rng.uniform(0, min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1))))


def _safely(renderer: Renderer, scope: Mapping[str, Any]) -> Any:
    """Vendor answers are untrusted and oddly shaped: a condition or hint that cannot be
    evaluated against one counts as false / absent rather than losing the event."""
    try:
        return renderer(scope)
    except Exception:
        return None


def wait_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from Retry-After or X-RateLimit-Reset, or None.

    X-RateLimit-Reset is sometimes epoch seconds and sometimes epoch milliseconds
    (both seen from the same vendor), and sometimes a delta: decide by magnitude.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
            except (TypeError, ValueError):
                return None
    reset = lowered.get("x-ratelimit-reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        if value > 1e11:  # epoch milliseconds
            value /= 1000.0
        if value > 1e8:  # epoch seconds
            return max(0.0, value - now)
        return max(0.0, value)  # already a delta in seconds
    return None


@dataclass(frozen=True)
class SubRequestSpec:
    method: str
    url: Renderer
    headers: Renderer
    body: Renderer | None
    encoding: str


@dataclass(frozen=True)
class LookupSpec:
    url: Renderer
    name: str
    missing: frozenset[int]
    #: The GET request itself, built once at load time (it uses the main request's auth).
    request: SubRequestSpec


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    request: SubRequestSpec
    expect: dict[int, Renderer]
    foreach: Renderer | None
    assertion: Renderer | None
    message: Renderer | None
    fix: SubRequestSpec | None

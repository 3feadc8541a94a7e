"""What delivery does with a preset's policy: classify answers, back off, read wait headers.

The preset declares (``relay.preset.model.DeliveryPolicy``); this module decides.
Nothing here is specific to a vendor.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..expr.templates import Renderer
from ..preset.model import NO_ANSWER, DeliveryPolicy, ResponseRule, Status

__all__ = ["Classification", "backoff", "classify", "parse_body", "vendor_message", "wait_from_headers"]


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
class Classification:
    outcome: str  # success | retry | fail | stop
    message: str
    hint: str | None


#: Applied after the preset's own rules: 2xx succeeds; 429, 5xx and no answer retry.
_DEFAULT_RULES = (
    ResponseRule(frozenset(range(200, 300)), None, "success", None),
    ResponseRule(frozenset({429, *range(500, 600), *NO_ANSWER}), None, "retry", None),
)


def classify(
    policy: DeliveryPolicy, status: Status, answer: Callable[[], tuple[Any, str]], context: Mapping[str, Any]
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

    for rule in (*policy.responses, *_DEFAULT_RULES):
        if not rule.matches(status):
            continue
        if rule.when is not None and not _safely(rule.when, full_scope()):
            continue
        if rule.outcome == "success" and rule.hint is None:
            return Classification("success", "", None)
        hint = _safely(rule.hint, full_scope()) if rule.hint is not None else None
        return Classification(
            rule.outcome, vendor_message(policy, full_scope()), " ".join(str(hint).split()) if hint else None
        )
    return Classification("fail", vendor_message(policy, full_scope()), None)


def vendor_message(policy: DeliveryPolicy, scope: Mapping[str, Any]) -> str:
    """The vendor's own words: the preset's ``error_message`` over the answer, else the answer itself."""
    status, body, text = scope["status"], scope["response"], scope["text"]
    if isinstance(status, str):
        return text or status.replace("_", " ")
    if policy.error_message is not None:
        found = _safely(policy.error_message, scope)
        if found:
            return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)
    if body is not None:
        return json.dumps(body, ensure_ascii=False)[:500]
    return text.strip()[:500] or "(empty body)"


def backoff(policy: DeliveryPolicy, attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**(attempt-1)))."""
    return rng.uniform(0, min(policy.backoff_max, policy.backoff_base * (2 ** (attempt - 1))))


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

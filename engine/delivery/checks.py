"""``relay check``: run a preset's declared preflight checks, and optionally fix.

Each check sends one request with the preset's auth. A status listed under
``expect`` fails with that plain message; a 2xx passes unless an ``assert`` (per
``foreach`` item) is false; ``--fix`` sends the check's ``fix`` request for
each failed item and re-runs the check to confirm.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import DeliveryError, RelayError, TransportError
from ..preset.model import NO_ANSWER, CheckSpec, CompiledPreset
from ..preset.settings import Settings
from ..runtime.build import build_check_request
from ..runtime.decision import Request, redact
from .deliver import Deliverer
from .retry import parse_body
from .stream import make_transport
from .transport import Response, Transport

Send = Callable[[Request], Response]

__all__ = ["CHECK_ATTEMPTS", "CHECK_DEADLINE", "CheckResult", "check_preset", "run_checks"]

#: A preflight check retries a 5xx, a timeout or no connection this many times at most,
#: within this many seconds; then it says what happened (e.g. that the host was unreachable).
CHECK_ATTEMPTS = 3
CHECK_DEADLINE = 20.0


@dataclass
class CheckResult:
    name: str
    description: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    return list(value or [])


def _one(
    preset: CompiledPreset, spec: CheckSpec, settings: Settings, send: Send, fix: bool, sent_to: Callable[[str], str]
) -> CheckResult:
    secrets = settings.secrets
    context: dict[str, Any] = {"settings": settings.values, "constants": preset.constants}
    result = CheckResult(spec.name, spec.description, ok=True)
    request = build_check_request(preset, spec.request, context, secrets, time.time())
    try:
        answer = send(request)
    except (TransportError, DeliveryError) as failure:
        if isinstance(failure, TransportError) or failure.status in NO_ANSWER:
            raise _unreachable(sent_to(request.url), failure) from None
        result.ok = False
        result.problems.append(f"could not reach the API: {failure}")
        return result
    body = parse_body(answer.content, answer.content_type)
    scope = {**context, "response": body, "status": answer.status, "text": answer.text}
    if answer.status in spec.expect:
        result.ok = False
        result.problems.append(redact(str(spec.expect[answer.status](scope)).strip(), secrets))
        return result
    if not 200 <= answer.status < 300:
        result.ok = False
        result.problems.append(redact(f"HTTP {answer.status}: {answer.text[:300]}", secrets))
        return result
    items = _items(spec.foreach(context)) if spec.foreach is not None else [None]
    for item in items:
        item_scope = {**scope, "item": item}
        if spec.assertion is None or spec.assertion(item_scope):
            continue
        message = spec.message(item_scope) if spec.message is not None else f"assertion failed for {item}"
        if fix and spec.fix is not None:
            repair = build_check_request(preset, spec.fix, item_scope, secrets, time.time())
            try:
                fixed = send(repair)
            except (TransportError, DeliveryError) as failure:
                result.problems.append(f"{message} (fix failed: {failure})")
                continue
            if 200 <= fixed.status < 300:
                result.fixed.append(redact(str(message), secrets))
                continue
            message = f"{message} (fix failed: HTTP {fixed.status} {fixed.text[:200]})"
        result.problems.append(redact(str(message), secrets))
    result.ok = not result.problems
    return result


def _unreachable(url: str, failure: RelayError) -> TransportError:
    """No answer from the vendor's host: say so, naming the host (never the query, which may hold a key)."""
    parts = urlsplit(url)
    kind = failure.kind if isinstance(failure, TransportError) else str(getattr(failure, "status", "connection_error"))
    detail = getattr(failure, "detail", str(failure))
    return TransportError(
        kind,
        f"{parts.scheme}://{parts.netloc} was unreachable ({detail}), so no check could run; "
        "check the host is up and reachable from here (and --redirect, if you gave one)",
    )


def run_checks(
    preset: CompiledPreset, settings: Settings, transport: Transport, *, fix: bool = False, send: Send | None = None
) -> list[CheckResult]:
    """Run every declared check. ``send`` (default: ``transport.send``) may add retries."""
    send = send or transport.send
    sent_to: Callable[[str], str] = getattr(transport, "target", lambda url: url)  # where a redirect sends it
    results = []
    for spec in preset.checks:
        try:
            results.append(_one(preset, spec, settings, send, fix, sent_to))
        except TransportError:
            raise  # the host did not answer: no other check can run, and nothing to fix
        except RelayError as exc:
            results.append(CheckResult(spec.name, spec.description, ok=False, problems=[str(exc)]))
    return results


def check_preset(
    preset: CompiledPreset, settings: Settings, *, fix: bool = False, redirects: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """``relay check``: run the preset's checks over real HTTP, with its rate limit and a short
    retry budget: someone is waiting for the answer, not the day delivery retries for."""
    transport = make_transport(preset, redirects)
    deliverer = Deliverer(preset, settings, transport, max_attempts=CHECK_ATTEMPTS, deadline=CHECK_DEADLINE)
    try:
        return run_checks(preset, settings, transport, fix=fix, send=deliverer.exchange)
    finally:
        transport.close()

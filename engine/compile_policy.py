"""Compile the delivery-side sections of a preset: ``delivery``, ``request.lookup``, ``check``.

Split from compiler.py to keep each module to one job; it reports problems
through the same builder, so every error is still collected and located.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .policy import CheckSpec, DeliveryPolicy, LookupSpec, ResponseRule, SubRequestSpec, status_matcher

if TYPE_CHECKING:
    from .compiler import _Builder

__all__ = ["compile_checks", "compile_delivery", "compile_lookup"]

Allowed = dict[str, Iterable[str] | None]


def compile_delivery(builder: _Builder, raw: dict[str, Any], allowed: Allowed, hint_allowed: Allowed) -> DeliveryPolicy:
    responses = []
    for index, entry in enumerate(raw.get("responses", [])):
        pointer = f"/delivery/responses/{index}"
        when = builder._expression(entry["when"], hint_allowed, f"{pointer}/when") if "when" in entry else None
        hint = builder._tree(entry["hint"], hint_allowed, f"{pointer}/hint") if "hint" in entry else None
        responses.append(ResponseRule(status_matcher(entry["status"]), when, entry["outcome"], hint))
    paths = raw.get("error_message", [])
    paths = [paths] if isinstance(paths, str) else paths
    searchers = tuple(builder._jmespath(p, f"/delivery/error_message/{i}") for i, p in enumerate(paths))
    order_by = builder._expression(raw["order_by"], allowed, "/delivery/order_by") if "order_by" in raw else None
    backoff = raw.get("backoff", {})
    rate = raw.get("rate_limit", {})
    timeout = raw.get("timeout", {})
    return DeliveryPolicy(
        order_by=order_by,
        responses=tuple(responses),
        error_message=searchers,
        max_attempts=raw.get("max_attempts", 5),
        backoff_base=backoff.get("base", 0.5),
        backoff_max=backoff.get("max", 30.0),
        rate=rate.get("rate"),
        burst=rate.get("burst", max(1, int(rate.get("rate", 1)))),
        connect_timeout=timeout.get("connect", 5.0),
        read_timeout=timeout.get("read", 30.0),
    )


def compile_sub_request(builder: _Builder, raw: dict[str, Any], allowed: Allowed, pointer: str) -> SubRequestSpec:
    return SubRequestSpec(
        method=raw["method"],
        url=builder._tree(raw["url"], allowed, f"{pointer}/url"),
        headers=builder._tree(raw.get("headers", {}), allowed, f"{pointer}/headers"),
        body=builder._tree(raw["body"], allowed, f"{pointer}/body") if "body" in raw else None,
        encoding=raw.get("encoding", "json"),
    )


def compile_lookup(builder: _Builder, raw: dict[str, Any] | None, allowed: Allowed) -> LookupSpec | None:
    if raw is None:
        return None
    url = builder._tree(raw["url"], allowed, "/request/lookup/url")
    return LookupSpec(
        url=url,
        name=raw["as"],
        missing=frozenset(raw.get("missing", [404])),
        request=SubRequestSpec("GET", url, _no_headers, None, "json"),
    )


def _no_headers(_context: Any) -> dict[str, Any]:
    return {}


def compile_checks(builder: _Builder, raw: list[dict[str, Any]], allowed: Allowed) -> tuple[CheckSpec, ...]:
    checks = []
    for index, entry in enumerate(raw):
        pointer = f"/check/{index}"
        scope: Allowed = {**allowed, "response": None, "status": None, "text": None}
        if "foreach" in entry:
            scope["item"] = None
        foreach = builder._expression(entry["foreach"], allowed, f"{pointer}/foreach") if "foreach" in entry else None
        assertion = builder._expression(entry["assert"], scope, f"{pointer}/assert") if "assert" in entry else None
        message = builder._tree(entry["message"], scope, f"{pointer}/message") if "message" in entry else None
        expect = {
            int(code): builder._tree(text, scope, f"{pointer}/expect/{code}")
            for code, text in entry.get("expect", {}).items()
        }
        fix = compile_sub_request(builder, entry["fix"], scope, f"{pointer}/fix") if "fix" in entry else None
        if fix is not None and foreach is None:
            builder.error(f"{pointer}/fix", "a fix needs a `foreach`: it repairs one failed item at a time")
        checks.append(
            CheckSpec(
                name=entry["name"],
                description=entry.get("description", ""),
                request=compile_sub_request(builder, entry["request"], allowed, f"{pointer}/request"),
                expect=expect,
                foreach=foreach,
                assertion=assertion,
                message=message,
                fix=fix,
            )
        )
    return tuple(checks)

"""Compile the delivery-side sections of a preset: ``delivery``, ``request.lookup``, ``check``.

Only the *specs*: what the preset declares. What delivery does with them lives
in ``relay.delivery``. Defaults come from the preset schema (``defaults``).
"""

from __future__ import annotations

from typing import Any

from ..expr.templates import Allowed, Renderer
from .builder import Builder
from .defaults import delivery_default
from .model import CheckSpec, DeliveryPolicy, LookupSpec, ResponseRule, SubRequestSpec, status_matcher

__all__ = ["compile_checks", "compile_delivery", "compile_lookup"]


def compile_delivery(builder: Builder, raw: dict[str, Any], allowed: Allowed, hint_allowed: Allowed) -> DeliveryPolicy:
    responses = []
    for index, entry in enumerate(raw.get("responses", [])):
        pointer = f"/delivery/responses/{index}"
        when = builder.expression(entry["when"], hint_allowed, f"{pointer}/when") if "when" in entry else None
        hint = builder.tree(entry["hint"], hint_allowed, f"{pointer}/hint") if "hint" in entry else None
        responses.append(
            ResponseRule(
                status_matcher(entry["status"]),
                when,
                entry["outcome"],
                hint,
                status_source=str(entry["status"]),
                when_source=entry.get("when"),
                hint_source=entry.get("hint"),
            )
        )
    paths = raw.get("error_message", [])
    paths = [paths] if isinstance(paths, str) else paths
    searchers = tuple(builder.path(p, f"/delivery/error_message/{i}") for i, p in enumerate(paths))
    order_by = builder.expression(raw["order_by"], allowed, "/delivery/order_by") if "order_by" in raw else None
    backoff = raw.get("backoff", {})
    rate = raw.get("rate_limit", {})
    timeout = raw.get("timeout", {})
    return DeliveryPolicy(
        order_by=order_by,
        responses=tuple(responses),
        error_message=searchers,
        max_attempts=raw.get("max_attempts", delivery_default("max_attempts")),
        backoff_base=backoff.get("base", delivery_default("backoff", "base")),
        backoff_max=backoff.get("max", delivery_default("backoff", "max")),
        rate=rate.get("rate"),
        burst=rate.get("burst", max(1, int(rate.get("rate", 1)))),
        connect_timeout=timeout.get("connect", delivery_default("timeout", "connect")),
        read_timeout=timeout.get("read", delivery_default("timeout", "read")),
        order_by_source=raw.get("order_by"),
    )


def compile_sub_request(builder: Builder, raw: dict[str, Any], allowed: Allowed, pointer: str) -> SubRequestSpec:
    leaves: list[tuple[tuple[str | int, ...], str]] = []

    def tree(key: str, source: Any) -> Renderer:
        def found(path: tuple[str | int, ...], leaf: str) -> None:
            leaves.append(((key, *path), leaf))

        return builder.tree(source, allowed, f"{pointer}/{key}", on_leaf=found)

    parts = {"url": raw["url"], "headers": raw.get("headers", {}), "body": raw.get("body")}
    return SubRequestSpec(
        method=raw["method"],
        url=tree("url", parts["url"]),
        headers=tree("headers", parts["headers"]),
        body=tree("body", parts["body"]) if "body" in raw else None,
        encoding=raw.get("encoding", "json"),
        url_source=raw["url"],
        secret_leaves=builder.flow.secret_leaves(leaves),
        check_size=builder.flow.needs_size_check(parts.values()),
    )


def compile_lookup(builder: Builder, raw: dict[str, Any] | None, allowed: Allowed) -> LookupSpec | None:
    if raw is None:
        return None
    request = compile_sub_request(builder, {"method": "GET", "url": raw["url"]}, allowed, "/request/lookup")
    return LookupSpec(name=raw["as"], missing=frozenset(raw.get("missing", [404])), request=request)


def compile_checks(builder: Builder, raw: list[dict[str, Any]], allowed: Allowed) -> tuple[CheckSpec, ...]:
    checks = []
    for index, entry in enumerate(raw):
        pointer = f"/check/{index}"
        scope: dict[str, Any] = {**allowed, "response": None, "status": None, "text": None}
        if "foreach" in entry:
            scope["item"] = None
        foreach = builder.expression(entry["foreach"], allowed, f"{pointer}/foreach") if "foreach" in entry else None
        assertion = builder.expression(entry["assert"], scope, f"{pointer}/assert") if "assert" in entry else None
        message = builder.tree(entry["message"], scope, f"{pointer}/message") if "message" in entry else None
        expect = {
            int(code): builder.tree(text, scope, f"{pointer}/expect/{code}")
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

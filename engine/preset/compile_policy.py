"""Compile the delivery-side sections of a preset: ``delivery`` and ``checks``.

Only the *specs*: what the preset declares. What delivery does with them lives
in ``relay.delivery``. Defaults come from the preset schema (``defaults``).
"""

from __future__ import annotations

from typing import Any

from ..expr.templates import Allowed, Renderer
from .builder import Builder
from .compile_request import compile_step
from .defaults import delivery_default
from .model import Auths, CheckSpec, DeliveryPolicy, ResponseRule

__all__ = ["compile_checks", "compile_delivery"]


def compile_delivery(
    builder: Builder, raw: dict[str, Any], order_allowed: Allowed, response_allowed: Allowed
) -> DeliveryPolicy:
    """``order_allowed`` is the event's scope; ``response_allowed`` adds the answer (``status``...)."""
    responses = []
    for index, entry in enumerate(raw.get("responses", [])):
        pointer = f"/delivery/responses/{index}"
        when = builder.expression(entry["when"], response_allowed, f"{pointer}/when") if "when" in entry else None
        hint = builder.tree(entry["hint"], response_allowed, f"{pointer}/hint") if "hint" in entry else None
        status = entry.get("status")
        statuses = None if status is None else frozenset(status if isinstance(status, list) else [status])
        if statuses is None and when is None and "when" not in entry:
            builder.error(pointer, "an entry needs a `status` or a `when`: without them it matches every answer")
        responses.append(
            ResponseRule(
                statuses,
                when,
                entry["outcome"],
                hint,
                status_source="" if status is None else str(status),
                when_source=entry.get("when"),
                hint_source=entry.get("hint"),
            )
        )
    order_by = builder.expression(raw["order_by"], order_allowed, "/delivery/order_by") if "order_by" in raw else None
    if "order_by" in raw and builder.flow.leaf_reads_secret("{{ " + str(raw["order_by"]) + " }}"):
        # The order key is stored in the journal and shown in summaries: it must not carry a secret.
        builder.error("/delivery/order_by", "the order key reads a secret setting; it is journaled in clear")
    error_message = None
    if "error_message" in raw:
        error_message = builder.tree(raw["error_message"], response_allowed, "/delivery/error_message")
    coalesce_by = None
    if isinstance(raw.get("coalesce"), str):
        coalesce_by = builder.tree(raw["coalesce"], order_allowed, "/delivery/coalesce")
    backoff = raw.get("backoff", {})
    rate = raw.get("rate_limit", {})
    timeout = raw.get("timeout", {})
    return DeliveryPolicy(
        order_by=order_by,
        responses=tuple(responses),
        error_message=error_message,
        max_attempts=raw.get("max_attempts"),
        deadline=raw.get("deadline", delivery_default("deadline")),
        backoff_base=backoff.get("base", delivery_default("backoff", "base")),
        backoff_max=backoff.get("max", delivery_default("backoff", "max")),
        rate=rate.get("rate"),
        burst=rate.get("burst", max(1, int(rate.get("rate", 1)))),
        connect_timeout=timeout.get("connect", delivery_default("timeout", "connect")),
        read_timeout=timeout.get("read", delivery_default("timeout", "read")),
        order_by_source=raw.get("order_by"),
        error_message_source=raw.get("error_message"),
        coalesce=bool(raw.get("coalesce", False)),
        coalesce_by=coalesce_by,
        coalesce_by_source=raw["coalesce"] if isinstance(raw.get("coalesce"), str) else None,
    )


def compile_checks(builder: Builder, raw: list[dict[str, Any]], allowed: Allowed, auth: Auths) -> tuple[CheckSpec, ...]:
    checks = []
    for index, entry in enumerate(raw):
        pointer = f"/checks/{index}"
        scope: dict[str, Any] = {**allowed, "response": None, "status": None, "text": None}
        if "foreach" in entry:
            scope["item"] = None
        foreach = builder.expression(entry["foreach"], allowed, f"{pointer}/foreach") if "foreach" in entry else None
        assertion = builder.expression(entry["assert"], scope, f"{pointer}/assert") if "assert" in entry else None
        message = builder.tree(entry["message"], scope, f"{pointer}/message") if "message" in entry else None
        expect: dict[int, Renderer] = {
            int(code): builder.tree(text, scope, f"{pointer}/expect/{code}")
            for code, text in entry.get("expect", {}).items()
        }
        fix = None
        if "fix" in entry:
            fix = compile_step(
                builder, entry["fix"], {**scope, "now": None}, auth, f"{pointer}/fix", default_role="write"
            )
            if foreach is None:
                builder.error(f"{pointer}/fix", "a fix needs a `foreach`: it repairs one failed item at a time")
        request = compile_step(
            builder, entry["request"], {**allowed, "now": None}, auth, f"{pointer}/request", default_role="read"
        )
        checks.append(
            CheckSpec(
                name=entry["name"],
                description=entry.get("description", ""),
                request=request,
                expect=expect,
                foreach=foreach,
                assertion=assertion,
                message=message,
                fix=fix,
            )
        )
    return tuple(checks)

"""render(preset, event, settings) -> Decision. Pure: no I/O, no clock, no randomness.

Order of work, which is also the order a preset author reasons in:
1. selectors pick values from the event (first non-null path wins);
2. the first mapping whose ``match`` fits is chosen; none means an ``unmapped`` drop;
3. rules run in order: a drop stops at once; for ``set``, the first rule to set a
   variable wins, so precedence is simply the order rules are written in;
4. fields (shared, then the mapping's own, merged over them) are rendered;
5. the request is built, validated against its schema and encoded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from jinja2.exceptions import SecurityError, UndefinedError

from .decision import Decision, Trace, redact
from .errors import RenderError
from .model import CompiledPreset, MappingSpec, RuleSpec, SelectorSpec
from .request import build_request, build_sub_request
from .settings import Settings
from .templating import LeafRenderFailure

__all__ = ["render"]

_RENDER_FAILURES = (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, KeyError, AttributeError)


class _Fields(dict[str, Any]):
    """Rendered fields; a field no mapping set reads as null instead of failing."""

    def __missing__(self, key: str) -> None:
        return None


def _select(selector: SelectorSpec, event: Any) -> tuple[Any, str | None]:
    for path, search in selector.pairs:
        value = search(event)
        if value is not None:
            if selector.transform is not None:
                value = selector.transform({"value": value})
            if value is not None:
                return value, path
    return selector.default, None


def _matches(mapping: MappingSpec, event: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    for clause in mapping.clauses:
        if clause.types is not None and event.get("type") not in clause.types:
            continue
        if clause.events is not None and event.get("event") not in clause.events:
            continue
        if clause.when is not None and not clause.when(context):
            continue
        return True
    return False


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged over ``base``, recursively; keys keep base-first order."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        merged[key] = deep_merge(below, value) if isinstance(value, Mapping) and isinstance(below, Mapping) else value
    return merged


def render(
    preset: CompiledPreset,
    event: Any,
    settings: Settings,
    *,
    event_ref: str = "",
    lookup: Any = None,
    looked_up: bool = False,
    now: float | None = None,
) -> Decision:
    """Decide what to do with ``event``: a request to send, or a drop with its reason.

    For a preset with a ``request.lookup`` the first call (``looked_up=False``)
    renders the lookup request and a body as if nothing existed yet; the
    delivery loop sends the lookup and calls again with its parsed answer.
    """
    if not isinstance(event, Mapping):
        raise RenderError(preset.name, "/", "an event must be a JSON object", event_ref=event_ref)
    secrets = settings.secrets
    # `stage` names what is being evaluated, as a cheap reference; the JSON pointer is
    # only spelled out if something fails (see _where), not on every event.
    stage: Any = "/selectors"
    try:
        trace = Trace()
        context: dict[str, Any] = dict(preset.variables)
        selected = trace.selectors
        for name, selector in preset.selectors.items():
            stage = selector
            context[name], selected[name] = _select(selector, event)
        context["event"] = event
        context["settings"] = settings.values
        context["mapping"] = None
        context["constants"] = preset.constants
        if preset.lookup is not None:
            context[preset.lookup.name] = lookup if looked_up else None
        chosen = None
        for mapping in preset.mappings:
            stage = mapping
            if _matches(mapping, event, context):
                chosen = mapping
                break
        if chosen is None:
            return Decision("drop", preset.unmapped_reason, "unmapped", None, trace, secrets)
        trace.mapping = context["mapping"] = chosen.name
        already_set: set[str] = set()
        effective: list[str] = []
        for rule in preset.rules:
            stage = rule
            if rule.when is not None and not rule.when(context):
                continue
            if rule.drop is not None:
                trace.rules.append({"rule": rule.name, "effect": "drop"})
                return Decision("drop", rule.drop, rule.name, None, trace, secrets)
            applied = []
            for variable, renderer in rule.sets:
                if variable in already_set:
                    continue
                stage = (rule, variable)
                context[variable] = renderer(context)
                already_set.add(variable)
                applied.append(variable)
            trace.rules.append({"rule": rule.name, "effect": f"set {', '.join(applied)}" if applied else "overridden"})
            if applied:
                effective.append(rule.name)
        stage = "/fields"
        fields = preset.base_fields(context)
        stage = (chosen, "fields")
        context["fields"] = _Fields(deep_merge(fields, chosen.fields(context)))
        order_key = None
        if preset.delivery.order_by is not None:
            stage = "/delivery/order_by"
            key = preset.delivery.order_by(context)
            order_key = None if key is None else str(key)
        stage = "/request"
        spec = preset.request.choose(context)
        trace.request = spec.name
        request = build_request(preset, spec, context, secrets, event_ref, time.time() if now is None else now)
        lookup_request = None
        if preset.lookup is not None and not looked_up:
            stage = "/request/lookup"
            lookup_request = build_sub_request(preset, preset.lookup.request, context, secrets, "/request/lookup")
    except RenderError as exc:
        if exc.event_ref or not _reference(event):
            raise
        raise type(exc)(exc.preset, exc.field, exc.detail, event_ref=_reference(event)) from None
    except LeafRenderFailure as failure:
        where, detail = failure.pointer, str(failure)
    except _RENDER_FAILURES as exc:
        where, detail = _where(stage), getattr(exc, "message", None) or str(exc) or type(exc).__name__
    else:
        return Decision(
            "send",
            None,
            ", ".join(effective) or None,
            request,
            trace,
            secrets,
            lookup=lookup_request,
            order_key=order_key,
        )
    raise RenderError(preset.name, where, redact(detail, secrets), event_ref=event_ref or _reference(event))


def _reference(event: Mapping[str, Any]) -> str:
    """How an error names the event: its messageId (never a value from it)."""
    message_id = event.get("messageId")
    return f"messageId {message_id}" if isinstance(message_id, str) else ""


def _where(stage: Any) -> str:
    """The JSON pointer of what was being evaluated when rendering failed."""
    if isinstance(stage, SelectorSpec):
        return f"/selectors/{stage.name}"
    if isinstance(stage, MappingSpec):
        return f"{stage.pointer}/match"
    if isinstance(stage, RuleSpec):
        return f"{stage.pointer}/when"
    if isinstance(stage, tuple):
        owner, part = stage
        return f"{owner.pointer}/fields" if part == "fields" else f"{owner.pointer}/set/{part}"
    return str(stage)

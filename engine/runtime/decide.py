"""decide(preset, event, settings) -> Plan. Pure: no I/O, no clock, no randomness.

Order of work, which is also the order a preset author reasons in:
1. selectors pick values from the event (first non-null path wins);
2. the first mapping whose ``match`` fits is chosen (one that drops, drops); none
   fitting means an ``unmapped`` drop;
3. rules run in order: a drop stops at once; for ``set``, the first rule to set a
   variable wins, so precedence is simply the order rules are written in;
4. fields (shared, then the mapping's own, merged over them) are rendered.
Building the requests from the plan is ``build``'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.exceptions import SecurityError, UndefinedError

from ..errors import LeafRenderError, RenderError, RequestSchemaError
from ..preset.model import CompiledPreset, MappingSpec, RuleSpec, SelectorSpec
from ..preset.settings import Settings
from .decision import Plan, Trace, redact

__all__ = [
    "DISABLED_BY_INTEGRATIONS",
    "RENDER_FAILURES",
    "Fields",
    "decide",
    "deep_merge",
    "enabled_by_integrations",
    "render_error",
]

#: What a template or path may raise on hostile or oddly shaped event data.
RENDER_FAILURES = (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, KeyError, AttributeError)


class Fields(dict[str, Any]):
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
    if not mapping.clauses:  # no `match`: every event
        return True
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


def render_error(
    preset: CompiledPreset, field: str, detail: str, secrets: tuple[str, ...], event_ref: str, *, schema: bool = False
) -> RenderError:
    """A RenderError located at the preset node ``field`` (a JSON pointer), secrets redacted."""
    kind = RequestSchemaError if schema else RenderError
    location = preset.source.locate(field) if field.startswith("/") else None
    return kind(preset.name, field, redact(detail, secrets), event_ref=event_ref, location=location)


#: The drop reason for an event whose ``integrations`` turn this destination off.
DISABLED_BY_INTEGRATIONS = "disabled by integrations"
#: The drop reason for an event no mapping takes (a mapping without `match` gives its own).
NO_MAPPING = "no mapping matches this event"


def enabled_by_integrations(event: Mapping[str, Any], names: Iterable[str]) -> bool:
    """Segment's ``integrations``: ``{"All": false}`` turns every destination off, and a key
    naming this destination (its preset name, its title, or the name the service gives it;
    compared ignoring case) turns it on or off. An object counts as on (it carries options)."""
    integrations = event.get("integrations")
    if not isinstance(integrations, Mapping) or not integrations:
        return True
    wanted = {name.lower() for name in names}
    for key, value in integrations.items():
        if str(key).lower() in wanted:
            return value is not False
    return integrations.get("All", True) is not False


def decide(
    preset: CompiledPreset, event: Any, settings: Settings, *, event_ref: str = "", destination: str | None = None
) -> Plan:
    """Decide what to do with ``event``: a drop with its reason, or the scope to build a request from.

    ``destination`` is the name the event's ``integrations`` may use for this destination,
    besides the preset's name and title.
    """
    secrets = settings.secrets
    if not isinstance(event, Mapping):
        raise render_error(preset, "/", "an event must be a JSON object", secrets, event_ref)
    event_ref = event_ref or _reference(event)
    names = (preset.name, str(preset.metadata.get("title", "")), *((destination,) if destination else ()))
    if not enabled_by_integrations(event, names):
        return Plan("drop", DISABLED_BY_INTEGRATIONS, "integrations", Trace(), secrets, event_ref=event_ref)
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
        chosen = None
        for mapping in preset.mappings:
            stage = mapping
            if _matches(mapping, event, context):
                chosen = mapping
                break
        if chosen is None:
            return Plan("drop", NO_MAPPING, "unmapped", trace, secrets, event_ref=event_ref)
        trace.mapping = context["mapping"] = chosen.name
        if chosen.drop is not None:
            return Plan("drop", chosen.drop, chosen.name, trace, secrets, event_ref=event_ref)
        already_set: set[str] = set()
        effective: list[str] = []
        for rule in preset.rules:
            stage = rule
            if rule.when is not None and not rule.when(context):
                continue
            if rule.drop is not None:
                trace.rules.append({"rule": rule.name, "effect": "drop"})
                return Plan("drop", rule.drop, rule.name, trace, secrets, event_ref=event_ref)
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
        context["fields"] = Fields(deep_merge(fields, chosen.fields(context)))
        order_key = None
        if preset.delivery.order_by is not None:
            stage = "/delivery/order_by"
            key = preset.delivery.order_by(context)
            order_key = None if key is None else str(key)
    except LeafRenderError as failure:
        where, detail = failure.pointer, str(failure)
    except RENDER_FAILURES as exc:
        where, detail = _where(stage), getattr(exc, "message", None) or str(exc) or type(exc).__name__
    else:
        return Plan("send", None, ", ".join(effective) or None, trace, secrets, context, order_key, event_ref)
    raise render_error(preset, where, detail, secrets, event_ref)


def _reference(event: Mapping[str, Any]) -> str:
    """How an error names the event: its messageId (never a value from it)."""
    message_id = event.get("messageId")
    return f"messageId {message_id}" if isinstance(message_id, str) else ""


def _where(stage: Any) -> str:
    """The JSON pointer of what was being evaluated when deciding failed."""
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

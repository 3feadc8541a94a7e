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
from ..expr.helpers import deep_merge
from ..preset.model import CompiledPreset, SelectorSpec
from ..preset.program_decide import NO_MAPPING
from ..preset.settings import Settings
from .decision import Plan, Trace, redact

__all__ = [
    "DISABLED_BY_INTEGRATIONS",
    "NO_MAPPING",
    "RENDER_FAILURES",
    "Fields",
    "Verdict",
    "decide",
    "deep_merge",
    "enabled_by_integrations",
    "failure",
    "reference",
    "render_error",
    "verdict",
]

#: What a template or path may raise on hostile or oddly shaped event data.
RENDER_FAILURES = (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, KeyError, AttributeError)


class Fields(dict[str, Any]):
    """Rendered fields; a field no mapping set reads as null instead of failing."""

    def __missing__(self, key: str) -> None:
        return None


def render_error(
    preset: CompiledPreset, field: str, detail: str, secrets: tuple[str, ...], event_ref: str, *, schema: bool = False
) -> RenderError:
    """A RenderError located at the preset node ``field`` (a JSON pointer), secrets redacted."""
    kind = RequestSchemaError if schema else RenderError
    location = preset.source.locate(field) if field.startswith("/") else None
    return kind(preset.name, field, redact(detail, secrets), event_ref=event_ref, location=location)


def failure(
    preset: CompiledPreset, error: Exception, secrets: tuple[str, ...], event_ref: str, fallback: str
) -> RenderError:
    """The RenderError for ``error``, raised inside the preset's program: located at the
    template leaf whose line raised it (``fallback`` when no leaf's line did)."""
    if isinstance(error, RenderError):
        return error
    if isinstance(error, LeafRenderError):
        where, detail = error.pointer or fallback, str(error)
    else:
        origin = preset.program.origin(error) if preset.program is not None else None
        where = origin.pointer if origin is not None else fallback
        detail = getattr(error, "message", None) or str(error) or type(error).__name__
    return render_error(preset, where, detail, secrets, event_ref)


#: The drop reason for an event whose ``integrations`` turn this destination off.
DISABLED_BY_INTEGRATIONS = "disabled by integrations"


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
    preset: CompiledPreset,
    event: Any,
    settings: Settings,
    *,
    event_ref: str = "",
    destination: str | None = None,
    trace: bool = False,
) -> Plan:
    """Decide what to do with ``event``: a drop with its reason, or the scope to build a request from.

    ``destination`` is the name the event's ``integrations`` may use for this destination,
    besides the preset's name and title. With ``trace``, the plan says why (``Plan.trace``:
    the selectors' paths, the rules that fired): for reviews, not for delivery.
    """
    action, reason, rule, found, context, order_key, fixed, mapping = verdict(
        preset, event, settings, event_ref, destination, trace
    )
    return Plan(action, reason, rule, found, settings.secrets, context, order_key, event_ref, fixed, mapping)


#: What ``verdict`` gives: a Plan's fields but its secrets and event reference, in order.
Verdict = tuple[
    Any, str | None, str | None, Trace | None, dict[str, Any] | None, str | None, tuple[Any, ...], str | None
]


def verdict(
    preset: CompiledPreset, event: Any, settings: Settings, event_ref: str, destination: str | None, trace: bool
) -> Verdict:
    """``decide``'s work, as a tuple (``render`` makes no Plan of it when it builds at once):
    action, reason, rule, trace, context, order key, the values fixed for the run, mapping."""
    secrets = settings.secrets
    if event.__class__ is not dict and not isinstance(event, Mapping):
        raise render_error(preset, "/", "an event must be a JSON object", secrets, event_ref)
    if event.get("integrations"):
        names = (preset.name, str(preset.metadata.get("title", "")), *((destination,) if destination else ()))
        if not enabled_by_integrations(event, names):
            return "drop", DISABLED_BY_INTEGRATIONS, "integrations", Trace() if trace else None, None, None, (), None
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = program.fixed(settings.values, preset.constants)
    rules: list[dict[str, str]] | None = [] if trace else None
    try:
        action, reason, rule, mapping, context, order_key = program.decide(
            event, settings.values, preset.constants, fixed, rules
        )
    except Exception as error:  # any failure of a template or path: located at its line
        raise failure(preset, error, secrets, event_ref or reference(event), "/") from None
    found = Trace(_selector_paths(preset, event), mapping, rules or []) if trace else None
    return action, reason, rule, found, context, order_key, fixed, mapping


def _selector_paths(preset: CompiledPreset, event: Mapping[str, Any]) -> dict[str, str | None]:
    """Which path gave each selector its value (None: none did, the default applies): for the trace."""
    return {name: _path_taken(selector, event) for name, selector in preset.selectors.items()}


def _path_taken(selector: SelectorSpec, event: Mapping[str, Any]) -> str | None:
    for path, search in selector.pairs:
        try:
            value = search(event)
            if value is not None and selector.transform is not None:
                value = selector.transform({"value": value})
        except Exception:  # a trace shows what happened; the failure itself is decide's to report
            return None
        if value is not None:
            return path
    return None


def reference(event: Any) -> str:
    """How an error names the event: its messageId (never a value from it)."""
    message_id = event.get("messageId") if isinstance(event, Mapping) else None
    return f"messageId {message_id}" if isinstance(message_id, str) else ""

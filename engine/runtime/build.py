"""Build HTTP requests from a Plan, one step at a time: auth, headers, encoding, schema check.

Pure: no I/O; the clock is passed in (``now`` is a name templates may read). The
encoded bytes are exactly what the transport sends. An event's steps, preflight
checks and their fixes all go through ``assemble``, so they share auth and
encoding. Headers are rendered after the body is encoded and may read it as
``content``: that is how a preset signs the exact bytes it sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..preset.model import CompiledPreset, StepSpec
from ..preset.program_steps import credentials as _credentials
from ..preset.program_steps import form_value
from .decide import failure, reference, render_error
from .decision import Plan, Request

__all__ = ["build", "build_check_request", "credentials", "form_value"]


def _request(step: StepSpec, made: tuple[Any, ...]) -> Request:
    method, url, headers, body, content, encoding, credentials, review = made
    return Request(method, url, headers, body, content, encoding, credentials, step.name, step.role, review)


def build(
    preset: CompiledPreset, plan: Plan, step: StepSpec, *, answers: Mapping[str, Any] | None = None, now: float
) -> Request | None:
    """The request ``step`` makes for a ``send`` plan, or None when its ``when`` is false.

    ``answers`` binds what earlier steps read (their ``as`` names); a read step whose
    answer is not given reads as null ("nothing there yet").
    """
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = plan.fixed or program.fixed(plan.context.get("settings") or {}, preset.constants)
    try:
        made = program.steps[step.pointer](plan.context, answers, now, fixed)
    except Exception as error:  # a template, or a request relay will not send: located
        event_ref = plan.event_ref or reference(plan.context.get("event"))
        raise failure(preset, error, plan.secrets, event_ref, step.pointer) from None
    trace = plan.trace
    if made is None:
        if trace is not None:
            trace.steps.append({"step": step.name, "effect": "skipped: its `when` is false"})
        return None
    method, url, headers, body, content, encoding, credentials, review = made
    request = Request(method, url, headers, body, content, encoding, credentials, step.name, step.role, review)
    if step.validator is not None:
        _check_body(preset, plan, step, request.body)
    if trace is not None:
        trace.steps.append({"step": step.name, "effect": f"{request.method} {step.role}"})
    return request


def _check_body(preset: CompiledPreset, plan: Plan, step: StepSpec, body: Any) -> None:
    """Refuse a body the request's schema does not accept, naming every problem."""
    validator = step.validator
    assert validator is not None
    if validator.accepts(body):
        return
    errors = validator.errors(body)
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors]
    first = min(errors, key=lambda e: list(map(str, e.absolute_path))) if errors else None
    raise render_error(
        preset,
        f"{step.pointer}/body" + "".join(f"/{part}" for part in (first.absolute_path if first else ())),
        "the rendered body fails its request schema: " + ("; ".join(sorted(problems)) or validator.refusal(body)),
        plan.secrets,
        plan.event_ref or reference(plan.context.get("event")),
        schema=True,
    )


def build_check_request(
    preset: CompiledPreset, step: StepSpec, context: Mapping[str, Any], secrets: tuple[str, ...], now: float
) -> Request:
    """A preflight check's request, or its fix: the preset's auth, no request schema."""
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = program.fixed(context.get("settings") or {}, preset.constants)
    try:
        made = program.steps[step.pointer](context, None, now, fixed)
    except Exception as error:
        raise failure(preset, error, secrets, "", step.pointer) from None
    return _request(step, made)


def credentials(
    preset: CompiledPreset, step: StepSpec, context: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The credential headers and query parameters ``step`` carries in ``context`` (a settings
    scope): what a fake of the vendor must accept."""
    try:
        return _credentials(step.auth, {**context, "now": 0.0})
    except Exception as error:
        raise failure(preset, error, (), "", f"{step.pointer}/auth") from None

"""Everything the page shows about one event: the decision, why, where each value came from,
and the exact requests, in order. Built with the library's own steps (decide, then build per request).

Every string that leaves this module has had the settings' secret values replaced
(``redact``), credential headers are masked, and the raw body is redacted too, so
the page never holds a secret, whatever a template put where.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from ..errors import RelayError, RenderError
from ..expr.filters import to_json
from ..jsonpointer import join_pointer
from ..preset.model import CompiledPreset, SelectorSpec, StepSpec
from ..preset.settings import Settings
from ..runtime.batch import batches
from ..runtime.batch_render import render_batch
from ..runtime.build import build, form_value
from ..runtime.decide import decide
from ..runtime.decision import REDACTED, Plan, Request, Trace, redact
from .curl import curl_command, env_name

__all__ = ["MISSING", "masked_settings", "review", "secret_forms", "secret_variables"]

#: No `answers` given: each `read` request's answer is null, as if nothing were there yet.
MISSING: Any = object()


def secret_forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret as it may appear on the wire: as is, JSON-escaped, percent-encoded.

    ``redact`` finds literal text; a secret holding a quote or a space is written
    differently inside a JSON body or a query string, and must be caught there too.
    """
    forms: list[str] = []
    for secret in secrets:
        for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)):
            if form and form not in forms:
                forms.append(form)
    return tuple(sorted(forms, key=len, reverse=True))


def secret_variables(preset: CompiledPreset, settings: Settings) -> dict[str, str]:
    """Each secret value -> the environment variable a curl command reads it from."""
    out = {}
    for name, spec in preset.settings.items():
        value = settings.values.get(name)
        if spec.secret and value not in (None, ""):
            out[str(value)] = spec.env or env_name(preset.name, name)
    return out


def masked_settings(preset: CompiledPreset, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The settings as the page may show them: declared, non-secret values only."""
    rows = []
    for name, spec in preset.settings.items():
        value = raw.get(name)
        source = "file"
        if isinstance(value, dict) and set(value) == {"env"}:
            source, value = f"${value['env']}", None
        elif value is None and spec.env:
            source = f"${spec.env} (if set)"
        elif value is None and spec.default is not None:
            source, value = "default", spec.default
        shown = REDACTED if spec.secret and (value is not None or source.startswith("$")) else value
        rows.append({"name": name, "value": shown, "secret": spec.secret, "source": source})
    for name in raw:
        if name not in preset.settings:
            rows.append({"name": name, "value": REDACTED, "secret": False, "source": "not a setting of this preset"})
    return rows


def _line(preset: CompiledPreset, pointer: str) -> int:
    return preset.source.locate(pointer).line


def _source_at(preset: CompiledPreset, pointer: str) -> Any:
    node: Any = preset.source.data
    for escaped in pointer.split("/")[1:]:
        token = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*prefix, str(key)))]
    return [(prefix, node)] if prefix else []


def _value_at(tree: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(tree, Mapping) or part not in tree:
            return False, None
        tree = tree[part]
    return True, tree


def _template(source: Any) -> str:
    return source if isinstance(source, str) else json.dumps(source, ensure_ascii=False)


def _selected(spec: SelectorSpec, event: Any, matched: str | None) -> Any:
    """The value the selector chose (decide keeps only the path for a dropped event)."""
    for path, search in spec.pairs:
        if path == matched:
            value = search(event)
            return spec.transform({"value": value}) if spec.transform is not None else value
    return spec.default


def _selectors(preset: CompiledPreset, plan: Plan, event: Any) -> list[dict[str, Any]]:
    rows = []
    for name, spec in preset.selectors.items():
        matched = _trace(plan).selectors.get(name)
        pointer = join_pointer("selectors", name)
        rows.append(
            {
                "name": name,
                "paths": list(spec.paths),
                "matched": matched,
                "value": _selected(spec, event, matched),
                "default": matched is None and spec.default is not None,
                "transform": spec.transform_source,
                "line": _line(preset, pointer),
            }
        )
    return rows


def _rules(preset: CompiledPreset, plan: Plan) -> list[dict[str, Any]]:
    fired = {step["rule"]: step["effect"] for step in _trace(plan).rules}
    rows = []
    reached = _trace(plan).mapping is not None
    for rule in preset.rules:
        if not reached:
            status, effect = "not reached", ""
        elif rule.name in fired:
            status, effect = "fired", fired[rule.name]
            if effect == "drop":
                reached = False
        else:
            status, effect = "skipped", "`when` is false"
        rows.append(
            {
                "name": rule.name,
                "when": rule.when_source,
                "action": f"drop: {rule.drop}" if rule.drop is not None else "set " + _assignments(rule.set_sources),
                "status": status,
                "effect": effect,
                "line": _line(preset, rule.pointer),
            }
        )
    return rows


def _fields(preset: CompiledPreset, plan: Plan) -> list[dict[str, Any]]:
    """Each field leaf: its value and the mapping (or the shared ``fields``) and template it came from."""
    mapping = next((m for m in preset.mappings if m.name == _trace(plan).mapping), None)
    if mapping is None:
        return []
    own = dict(_leaves(_source_at(preset, f"{mapping.pointer}/fields") or {}))
    rendered = plan.context.get("fields", {})
    rows = []
    for path, template in _leaves(_source_at(preset, "/fields") or {}):
        if path not in own:
            rows.append(_field_row(preset, "shared fields", "/fields", path, template, rendered))
    for path, template in own.items():
        row = _field_row(preset, f"mapping {mapping.name}", f"{mapping.pointer}/fields", path, template, rendered)
        row["overrides"] = path in dict(_leaves(_source_at(preset, "/fields") or {}))
        rows.append(row)
    return rows


def _field_row(
    preset: CompiledPreset, origin: str, base: str, path: tuple[str, ...], template: Any, rendered: Any
) -> dict[str, Any]:
    present, value = _value_at(rendered, path)
    pointer = base + join_pointer(*path)
    return {
        "field": ".".join(path),
        "value": value,
        "present": present,
        "origin": origin,
        "template": _template(template),
        "line": _line(preset, pointer),
    }


def _body_sources(preset: CompiledPreset, spec: StepSpec, request: Request) -> list[dict[str, Any]]:
    pointer = f"{spec.pointer}/body"
    source = _source_at(preset, pointer)
    rows = []
    for path, template in _leaves(source or {}):
        present, value = _value_at(request.body, path)
        leaf = pointer + join_pointer(*path)
        rows.append(
            {
                "field": ".".join(path),
                "value": value,
                "present": present,
                "template": _template(template),
                "line": _line(preset, leaf),
            }
        )
    return rows


def _request_view(
    preset: CompiledPreset, request: Request, step: str, title: str, note: str, secrets: tuple[str, ...], env: Any
) -> dict[str, Any]:
    shown = request.to_dict()
    return {
        "step": step,
        "title": title,
        "note": note,
        "method": shown["method"],
        "url": shown["url"],
        "headers": shown["headers"],
        "body": shown["body"],
        "encoding": request.encoding,
        "raw": _raw_body(request, shown["body"], secrets),
        "bytes": len(request.content),
        "curl": curl_command(request, env, header_prefix=preset.name),
    }


def _raw_body(request: Request, shown_body: Any, secrets: tuple[str, ...]) -> str:
    """The body as sent, with secrets hidden by their place: the redacted body encoded the way
    the request was. Searching the sent bytes for a secret would miss it where encoding changed
    it (escaped, percent-encoded) and could mangle ordinary words that contain a short one."""
    if shown_body == request.body:  # nothing in the body came from a secret
        return request.content.decode("utf-8", "replace")
    if request.encoding == "form" and isinstance(shown_body, dict):
        return urlencode([(str(name), form_value(value)) for name, value in shown_body.items()])
    if request.encoding == "json":
        return str(to_json(shown_body))
    return str(redact(request.content.decode("utf-8", "replace"), secrets))  # a shape it cannot rebuild


def review(
    preset: CompiledPreset, event: Any, settings: Settings, *, now: float, answers: Any = MISSING
) -> dict[str, Any]:
    """The page's whole view of ``event``; a render failure is reported, located, not raised."""
    secrets = secret_forms(settings.secrets)
    env = secret_variables(preset, settings)
    out: dict[str, Any] = {"decision": None, "requests": [], "error": None}
    try:
        plan = decide(preset, event, settings, trace=True)
    except RelayError as exc:
        out["error"] = _error(exc)
        return redact(out, secrets)  # type: ignore[no-any-return]
    mapping = next((m for m in preset.mappings if m.name == _trace(plan).mapping), None)
    out["decision"] = {
        "action": plan.action,
        "reason": plan.reason,
        "rule": plan.rule,
        "mapping": _trace(plan).mapping,
        "mapping_line": _line(preset, mapping.pointer) if mapping else None,
        "order_key": plan.order_key,
    }
    out["trace"] = {"selectors": _selectors(preset, plan, event), "rules": _rules(preset, plan)}
    out["fields"] = _fields(preset, plan) if plan.action == "send" else []
    out["body_sources"] = []
    if plan.action == "send":
        try:
            _requests(preset, plan, out, now, answers, env)
            if preset.batches:
                out["batched"] = _batched(preset, event, settings, now, answers, env)
        except RelayError as exc:
            out["error"] = _error(exc)
    return redact(out, secrets)  # type: ignore[no-any-return]


def _batched(
    preset: CompiledPreset, event: Any, settings: Settings, now: float, answers: Any, env: dict[str, str]
) -> list[dict[str, Any]]:
    """How a run with batching on sends the event: the bulk request it rides in (alone here,
    with others in a real run), and any step that still goes one by one."""
    secrets = secret_forms(settings.secrets)
    given = None if answers is MISSING else dict(answers or {})
    plan = decide(preset, event, settings)
    bulk_steps = {step.name for step in preset.steps if batches(preset, plan, step, answers=given, now=now)}
    batched = render_batch(preset, [event], settings, answers=given, now=now)
    views = []
    for number, (request, _events) in enumerate(batched.requests, 1):
        bulk = request.step in bulk_steps
        title = f"{number}. {request.step} ({'bulk' if bulk else 'one by one'})"
        note = "other events join this body in a run, up to the preset's batch limits" if bulk else ""
        views.append(_request_view(preset, request, request.step, title, note, secrets, env))
    return views


def _requests(
    preset: CompiledPreset, plan: Plan, out: dict[str, Any], now: float, answers: Any, env: dict[str, str]
) -> None:
    """Every request of the event, in order; a `read`'s answer comes from the golden case, or is null."""
    secrets = secret_forms(plan.secrets)
    given = {} if answers is MISSING else dict(answers or {})
    for number, step in enumerate(preset.steps, 1):
        request = build(preset, plan, step, answers=given, now=now)
        if request is None:
            continue
        notes = []
        if step.bind is not None:
            source = "this golden case gives it" if step.bind in given else "null here: nothing there yet"
            notes.append(f"its answer is bound to `{step.bind}` ({source})")
        if step.when_source:
            notes.append(f"sent because `{step.when_source}`")
        title = f"{number}. {step.name} ({step.role})"
        out["requests"].append(_request_view(preset, request, step.name, title, "; ".join(notes), secrets, env))
        out["body_sources"].extend(
            {**row, "step": step.name} for row in _body_sources(preset, step, request) if request.body is not None
        )


def _error(exc: RelayError) -> dict[str, Any]:
    if isinstance(exc, RenderError):
        location = exc.location
        return {
            "message": exc.located(),
            "pointer": exc.field,
            "line": location.line if location else None,
            "col": location.col if location else None,
        }
    return {"message": str(exc), "pointer": None, "line": None, "col": None}


def _assignments(sets: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} = {_template(value)}" for name, value in sets.items())


def _trace(plan: Plan) -> Trace:
    assert plan.trace is not None, "the review decides with trace=True"
    return plan.trace

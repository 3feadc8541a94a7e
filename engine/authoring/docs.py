"""``relay docs PRESET``: a Markdown page generated from the preset itself.

The page shows the settings, the event mapping table, the rules in precedence
order, the request (with its variants), the delivery policy and an example
rendered from the preset's first sending golden. It is regenerated, never
edited, and a test fails when a checked-in page is stale.
"""

from __future__ import annotations

import json
from typing import Any

from ..expr.templates import Renderer
from ..preset.locate import presets_root_of
from ..preset.model import AuthSpec, CompiledPreset, MappingSpec
from .golden import discover_cases, run_case

__all__ = ["render_docs"]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split())


def _code(value: Any) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else ""


def _match_text(mapping: MappingSpec) -> str:
    parts = []
    for clause in mapping.clauses:
        bits = []
        for key, values in (("type", clause.types), ("event", clause.events)):
            if values is not None:
                bits.append(f"{key} " + " or ".join(f"`{v}`" for v in values))
        if clause.when_source is not None:
            bits.append(f"when `{clause.when_source}`")
        parts.append(", ".join(bits))
    return "; or ".join(parts)


def _settings(preset: CompiledPreset) -> list[str]:
    lines = [
        "| setting | type | required | default | secret | environment | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in preset.settings.values():
        kind = spec.type + (f" (one of {', '.join(f'`{v}`' for v in spec.enum)})" if spec.enum else "")
        lines.append(
            f"| `{spec.name}` | {kind} | {'yes' if spec.required else 'no'} | {_code(spec.default)} | "
            f"{'yes' if spec.secret else ''} | {_code(spec.env)} | {_cell(spec.description)} |"
        )
    return lines


def _mappings(preset: CompiledPreset) -> list[str]:
    lines = ["| mapping | matches | fields it sets |", "|---|---|---|"]
    for mapping in preset.mappings:
        own = mapping.field_names
        lines.append(
            f"| `{mapping.name}` | {_match_text(mapping)} | "
            f"{', '.join(f'`{f}`' for f in own) or '(shared fields only)'} |"
        )
    if preset.shared_field_names:
        lines.append("")
        shared = ", ".join(f"`{f}`" for f in preset.shared_field_names)
        lines.append(f"Every mapping also sets the shared fields: {shared}.")
    lines.append("")
    lines.append(f"Any other event is dropped: *{preset.unmapped_reason}*.")
    return lines


def _rules(preset: CompiledPreset) -> list[str]:
    if not preset.rules:
        return ["This preset has no rules."]
    lines = [
        "Rules run top to bottom. A drop stops at once; for `set`, the first rule to set a variable wins.",
        "",
        "| # | rule | when | effect |",
        "|---|---|---|---|",
    ]
    for index, rule in enumerate(preset.rules, 1):
        effect = (
            f"drop: *{rule.drop}*"
            if rule.drop is not None
            else "set "
            + ", ".join(
                f"`{k}` = `{json.dumps(v) if not isinstance(v, str) else v}`" for k, v in rule.set_sources.items()
            )
        )
        lines.append(f"| {index} | `{rule.name}` | {_code(rule.when_source or 'always')} | {effect} |")
    if preset.variables:
        lines.append("")
        lines.append(
            "Defaults when no rule sets them: "
            + ", ".join(f"`{k}` = `{json.dumps(v)}`" for k, v in preset.variables.items())
            + "."
        )
    return lines


def _auth_text(auths: tuple[tuple[Renderer | None, AuthSpec], ...]) -> str:
    texts = []
    for _when, auth in auths:
        text = auth.kind + (f" ({auth.scheme})" if auth.kind == "bearer" and auth.scheme != "Bearer" else "")
        if auth.kind == "api_key":
            text += f" in {auth.location} `{auth.name}`"
        if auth.when_source is not None:
            text += f" when `{auth.when_source}`"
        texts.append(text)
    return "; ".join(texts) or "none"


def _request(preset: CompiledPreset) -> list[str]:
    request = preset.request
    lines = ["| request | when | method | URL | schema |", "|---|---|---|---|---|"]
    for _when, variant in request.variants:
        lines.append(
            f"| `{variant.name}` | `{_cell(variant.when_source)}` | {_code(variant.method_source)} "
            f"| {_code(variant.url_source)} | {_code(variant.schema_source)} |"
        )
    lines.append(
        f"| `default` | otherwise | {_code(request.method_source)} | {_code(request.url_source)} "
        f"| {_code(request.schema_source)} |"
    )
    lines.append("")
    lines.append(f"Auth: {_auth_text(request.auth)}. Body encoding: {request.encoding}.")
    if preset.lookup is not None:
        lookup = preset.lookup
        lines.append("")
        lines.append(
            f"Before writing, relay reads `{lookup.request.url_source}` (a status in "
            f"{sorted(lookup.missing)} means nothing there yet) and binds the answer to `{lookup.name}`."
        )
    sig = request.signature
    if sig is not None:
        lines.append("")
        lines.append(
            f"Requests are signed: `{sig.header}` carries an HMAC-{sig.algorithm.upper()}"
            + (
                f" over `<{sig.timestamp_header}>.` + the body bytes"
                if sig.timestamp_header
                else " over the body bytes"
            )
            + (f", when `{sig.when_source}`" if sig.when_source is not None else "")
            + "."
        )
    return lines


def _duration(seconds: float) -> str:
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _delivery(preset: CompiledPreset) -> list[str]:
    policy = preset.delivery
    lines = [
        "- Retries: 429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter "
        f"(base {policy.backoff_base} s, at most {policy.backoff_max} s) for up to {_duration(policy.deadline)}"
        + (f", at most {policy.max_attempts} attempts" if policy.max_attempts else "")
        + "; 429s slow the rate instead of counting as failures.",
        f"- Rate limit: {policy.rate} requests/s, burst {policy.burst}." if policy.rate else "- No rate limit.",
        f"- Order: events with the same `{policy.order_by_source}` are delivered in input order."
        if policy.order_by_source is not None
        else "- No ordering key.",
    ]
    for rule in policy.responses:
        hint = f" Hint: {_cell(rule.hint_source)}" if rule.hint_source is not None else ""
        when = f" when `{_cell(rule.when_source)}`" if rule.when_source is not None else ""
        lines.append(f"- `{rule.status_source}`{when} → {rule.outcome}.{hint}")
    lines.append("- Otherwise: 2xx succeeds; 429, 5xx, timeouts and connection errors are retried; other 4xx fail.")
    if any(rule.outcome == "stop" for rule in policy.responses):
        lines.append(
            "- `stop`: the answer means nothing can be delivered (wrong credentials, a missing list): relay stops "
            "sending, parks the rest of the stream in the dead letter, and exits with the hint."
        )
    return lines


def _example(preset: CompiledPreset) -> list[str]:
    cases = discover_cases(preset.name, presets_root_of(preset.path))
    # Prefer the seed example, then an identify case: the most telling request for a reader.
    cases.sort(key=lambda c: (not c.name.startswith("seed"), "identify" not in c.name, c.name))
    for case in cases:
        result = run_case(case, preset)
        if result.actual.get("decision") == "send":
            return [
                f"From the golden case `{case.name}`: {_cell(case.description)}",
                "",
                "```json",
                json.dumps(result.actual["request"], indent=2, ensure_ascii=False),
                "```",
            ]
    return ["(no sending golden case yet)"]


def render_docs(preset: CompiledPreset) -> str:
    meta = preset.metadata
    out = [
        f"# {meta['title']}",
        "",
        f"<!-- generated by `relay docs {preset.name}` from presets/{preset.name}/preset.yaml: do not edit -->",
        "",
        _cell(meta["description"]),
        "",
        f"Preset `{preset.name}`, version {meta['version']}.",
        "",
        "## Settings",
        "",
        *_settings(preset),
        "",
        "## Event mapping",
        "",
        *_mappings(preset),
        "",
        "## Rules and precedence",
        "",
        *_rules(preset),
        "",
        "## Request",
        "",
        *_request(preset),
        "",
        "## Delivery",
        "",
        *_delivery(preset),
        "",
    ]
    if preset.checks:
        out += ["## Preflight checks (`relay check`)", ""]
        out += [f"- `{c.name}`: {c.description}" + (" (`--fix` can repair it)" if c.fix else "") for c in preset.checks]
        out.append("")
    out += ["## Example request", "", *_example(preset), ""]
    return "\n".join(out)

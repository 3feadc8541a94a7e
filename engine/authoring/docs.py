"""``relay docs PRESET``: a Markdown page generated from the preset itself.

The page shows the settings, the event mapping table, the rules in precedence
order, the request (with its variants), the delivery policy and an example
rendered from the preset's first sending golden. It is regenerated, never
edited, and a test fails when a checked-in page is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..preset.locate import presets_root_of
from ..preset.model import Auths, CompiledPreset, MappingSpec
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
        sets = f"drop: *{mapping.drop}*" if mapping.drop else ", ".join(f"`{f}`" for f in own) or "(shared fields only)"
        lines.append(f"| `{mapping.name}` | {_match_text(mapping) or 'any other event'} | {sets} |")
    if preset.shared_field_names:
        lines.append("")
        shared = ", ".join(f"`{f}`" for f in preset.shared_field_names)
        lines.append(f"Every mapping also sets the shared fields: {shared}.")
    if all(mapping.clauses for mapping in preset.mappings):
        lines.append("")
        lines.append("Any other event is dropped: *no mapping matches this event*.")
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
        names = ", ".join(f"`{name}`" for name in preset.variables)
        lines.append(f"Variables ({names}) are null until a rule sets them.")
    if len(preset.extends) > 1:
        lines.append("")
        shared = ", ".join(f"`{Path(file).name}`" for file in preset.extends[1:])
        lines.append(f"Built on {shared} (`extends`).")
    return lines


def _auth_text(auths: Auths) -> str:
    texts = []
    for _when, auth in auths:
        text = auth.kind
        if auth.kind == "api_key":
            text += f" in {auth.location} `{auth.name}`"
        if auth.when_source is not None:
            text += f" when `{auth.when_source}`"
        texts.append(text)
    return "; ".join(texts) or "none"


def _requests(preset: CompiledPreset) -> list[str]:
    lines = [
        "Each event makes these requests, in order; a request runs when its `when` holds.",
        "",
        "| request | role | when | method | URL | schema |",
        "|---|---|---|---|---|---|",
    ]
    for step in preset.steps:
        lines.append(
            f"| `{step.name}` | {step.role} | {_code(step.when_source or 'always')} | {_code(step.method_source)} "
            f"| {_code(step.url_source)} | {_code(step.schema_source)} |"
        )
    for step in preset.steps:
        if step.bind is not None:
            missing = f" (a status in {sorted(step.missing)} means nothing there: null)" if step.missing else ""
            lines.append("")
            lines.append(f"`{step.name}` binds its answer to `{step.bind}`{missing} for the requests after it.")
    auth = _auth_text(preset.steps[0].auth) if preset.steps else "none"
    encodings = sorted({step.encoding for step in preset.steps if step.body is not None}) or ["none"]
    lines.append("")
    lines.append(f"Auth: {auth}. Body encoding: {', '.join(encodings)}.")
    return lines + _batching(preset)


def _batching(preset: CompiledPreset) -> list[str]:
    """How the requests that batch go out (the default; `relay: {batch: false}` sends them one by one)."""
    batched = [step for step in preset.steps if step.batch is not None]
    if not batched:
        return []
    lines = [
        "",
        "Batched by default (the settings' `relay: {batch: false}` sends the requests above, one per event):",
        "",
    ]
    for step in batched:
        batch = step.batch
        assert batch is not None
        limit = f"up to {batch.max_items:,} events" + (f" or {batch.max_bytes:,} bytes" if batch.max_bytes else "")
        text = (
            f"- `{step.name}`: {_code(batch.request.method_source)} {_code(batch.request.url_source)}, {limit} "
            f"per request; the first event waits at most {batch.flush:g} s for others."
        )
        if batch.job is not None:
            job = batch.job
            text += (
                f" The answer names a job, polled with {_code(job.poll.url_source)} (at most every {job.every:g} s) "
                f"until {', '.join(sorted(job.done))}"
                + (f" (failed: {', '.join(sorted(job.failed))})" if job.failed else "")
                + "."
            )
        if batch.results is not None:
            where = _code(batch.results.request.url_source) if batch.results.request is not None else "the answer"
            text += f" Items the vendor refuses are read from {where} and fail their events alone."
        lines.append(text)
    if preset.delivery.coalesce:
        lines.append(
            "- A contact's events waiting together are merged into one (later fields win)"
            + (
                f", for as long as `{preset.delivery.coalesce_by_source}` is the same"
                if preset.delivery.coalesce_by_source
                else ""
            )
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
                json.dumps(result.actual["requests"], indent=2, ensure_ascii=False),
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
        "## Requests",
        "",
        *_requests(preset),
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
    out += ["## Example requests", "", *_example(preset), ""]
    return "\n".join(out)

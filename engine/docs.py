"""``relay docs PRESET``: a Markdown page generated from the preset itself.

The page shows the settings, the event mapping table, the rules in precedence
order, the request (with its variants), the delivery policy and an example
rendered from the preset's first sending golden. It is regenerated, never
edited, and a test fails when a checked-in page is stale.
"""

from __future__ import annotations

import json
from typing import Any

from .golden import discover_cases, run_case
from .model import CompiledPreset
from .paths import presets_root_of
from .yamlsource import SourceDoc

__all__ = ["render_docs"]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split())


def _code(value: Any) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else ""


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if prefix else []


def _match_text(match: Any) -> str:
    clauses = match if isinstance(match, list) else [match]
    parts = []
    for clause in clauses:
        bits = []
        for key in ("type", "event"):
            if key in clause:
                value = clause[key]
                bits.append(f"{key} " + " or ".join(f"`{v}`" for v in (value if isinstance(value, list) else [value])))
        if "when" in clause:
            bits.append(f"when `{clause['when']}`")
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


def _mappings(raw: dict[str, Any]) -> list[str]:
    shared = _leaves(raw.get("fields", {}))
    lines = ["| mapping | matches | fields it sets |", "|---|---|---|"]
    for mapping in raw["mappings"]:
        own = _leaves(mapping.get("fields", {}))
        lines.append(
            f"| `{mapping['name']}` | {_match_text(mapping['match'])} | "
            f"{', '.join(f'`{f}`' for f in own) or '(shared fields only)'} |"
        )
    if shared:
        lines.append("")
        lines.append("Every mapping also sets the shared fields: " + ", ".join(f"`{f}`" for f in shared) + ".")
    unmapped = raw.get("unmapped", {}).get("drop", "no mapping matches this event")
    lines.append("")
    lines.append(f"Any other event is dropped: *{unmapped}*.")
    return lines


def _rules(raw: dict[str, Any]) -> list[str]:
    rules = raw.get("rules", [])
    if not rules:
        return ["This preset has no rules."]
    lines = [
        "Rules run top to bottom. A drop stops at once; for `set`, the first rule to set a variable wins.",
        "",
        "| # | rule | when | effect |",
        "|---|---|---|---|",
    ]
    for index, rule in enumerate(rules, 1):
        effect = (
            f"drop: *{rule['drop']}*"
            if "drop" in rule
            else "set "
            + ", ".join(f"`{k}` = `{json.dumps(v) if not isinstance(v, str) else v}`" for k, v in rule["set"].items())
        )
        lines.append(f"| {index} | `{rule['name']}` | {_code(rule.get('when', 'always'))} | {effect} |")
    defaults = raw.get("variables", {})
    if defaults:
        lines.append("")
        lines.append(
            "Defaults when no rule sets them: "
            + ", ".join(f"`{k}` = `{json.dumps(v)}`" for k, v in defaults.items())
            + "."
        )
    return lines


def _auth_text(auth: Any) -> str:
    items = auth if isinstance(auth, list) else [auth]
    texts = []
    for item in items:
        text = item["type"] + (f" ({item['scheme']})" if "scheme" in item else "")
        if item["type"] == "api_key":
            text += f" in {item['in']} `{item['name']}`"
        if "when" in item:
            text += f" when `{item['when']}`"
        texts.append(text)
    return "; ".join(texts)


def _request(raw: dict[str, Any]) -> list[str]:
    request = raw["request"]
    lines = ["| request | when | method | URL | schema |", "|---|---|---|---|---|"]
    for variant in request.get("variants", []):
        lines.append(
            f"| `{variant['name']}` | `{_cell(variant['when'])}` | {_code(variant.get('method', request['method']))} "
            f"| {_code(variant.get('url', request['url']))} | {_code(variant.get('schema', request['schema']))} |"
        )
    lines.append(
        f"| `default` | otherwise | {_code(request['method'])} | {_code(request['url'])} | {_code(request['schema'])} |"
    )
    lines.append("")
    lines.append(f"Auth: {_auth_text(request.get('auth', {'type': 'none'}))}. Body encoding: {request['encoding']}.")
    if "lookup" in request:
        lines.append("")
        lines.append(
            f"Before writing, relay reads `{request['lookup']['url']}` (a status in "
            f"{request['lookup'].get('missing', [404])} means nothing there yet) and binds the answer to "
            f"`{request['lookup']['as']}`."
        )
    if "signature" in request:
        sig = request["signature"]
        lines.append("")
        lines.append(
            f"Requests are signed: `{sig['header']}` carries an HMAC-{sig.get('algorithm', 'sha256').upper()}"
            + (
                f" over `<{sig['timestamp_header']}>.` + the body bytes"
                if "timestamp_header" in sig
                else " over the body bytes"
            )
            + (f", when `{sig['when']}`" if "when" in sig else "")
            + "."
        )
    return lines


def _delivery(preset: CompiledPreset, raw: dict[str, Any]) -> list[str]:
    policy = preset.delivery
    lines = [
        f"- Attempts: up to {policy.max_attempts}, with exponential backoff and jitter "
        f"(base {policy.backoff_base} s, at most {policy.backoff_max} s).",
        f"- Rate limit: {policy.rate} requests/s, burst {policy.burst}." if policy.rate else "- No rate limit.",
        f"- Order: events with the same `{raw['delivery']['order_by']}` are delivered in input order."
        if "order_by" in raw.get("delivery", {})
        else "- No ordering key.",
    ]
    for entry in raw.get("delivery", {}).get("responses", []):
        hint = f" Hint: {_cell(entry['hint'])}" if "hint" in entry else ""
        when = f" when `{_cell(entry['when'])}`" if "when" in entry else ""
        lines.append(f"- `{entry['status']}`{when} → {entry['outcome']}.{hint}")
    lines.append("- Otherwise: 2xx succeeds; 429, 5xx, timeouts and connection errors are retried; other 4xx fail.")
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
    raw: dict[str, Any] = preset.source.data if isinstance(preset.source, SourceDoc) else {}
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
        *_mappings(raw),
        "",
        "## Rules and precedence",
        "",
        *_rules(raw),
        "",
        "## Request",
        "",
        *_request(raw),
        "",
        "## Delivery",
        "",
        *_delivery(preset, raw),
        "",
    ]
    if preset.checks:
        out += ["## Preflight checks (`relay check`)", ""]
        out += [f"- `{c.name}`: {c.description}" + (" (`--fix` can repair it)" if c.fix else "") for c in preset.checks]
        out.append("")
    out += ["## Example request", "", *_example(preset), ""]
    return "\n".join(out)

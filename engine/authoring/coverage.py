"""``relay golden --coverage``: what a preset's goldens never exercise.

Every golden case is decided and built exactly as ``relay golden`` renders it, and
what happened is recorded against the preset's parts. A part no case exercises is a
gap, located at the preset line that wrote it:

- a mapping no case sends through (a mapping that drops: that no case is taken by),
  a rule that never fires;
- a consent state (granted, withdrawn, unknown) no case reaches the rules with, for
  each selector that reads ``consent``;
- a request never sent, and a request with a ``when`` never skipped (its false
  branch); a ``read`` whose answer is never given, or never missing;
- a selector fallback (each path of a list, and each alternative of a JMESPath
  ``a || b``) that never supplies the value, for the selectors the preset reads;
- a field or body template that renders null in every case that reaches it (how a
  missing fallback goes unnoticed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jmespath
from jinja2 import meta
from jmespath.visitor import TreeInterpreter

from ..errors import Location, RelayError
from ..expr.templates import parse
from ..jsonpointer import escape_pointer
from ..preset.locate import display_path
from ..preset.model import CompiledPreset, SelectorSpec
from ..runtime.batch import render_item
from ..runtime.build import build
from ..runtime.decide import decide
from ..runtime.decision import Plan, Trace
from .golden import GoldenCase

__all__ = ["CONSENT_STATES", "CoverageReport", "Item", "measure"]

#: The states every selector that reads consent must be seen in.
CONSENT_STATES = ("granted", "withdrawn", "unknown")
#: Keys whose string is a bare expression rather than a ``{{ }}`` template.
_EXPRESSION_KEYS = frozenset({"when", "order_by", "transform", "assert", "foreach"})


@dataclass
class Item:
    """One thing a golden can exercise."""

    kind: str  # mapping | rule | consent | request | fallback | field | body
    pointer: str
    what: str  # how the gap is worded: "mapping 'page' is never taken"
    covered: bool = False


@dataclass
class CoverageReport:
    preset: CompiledPreset
    cases: int = 0
    #: Cases that could not be rendered: they exercise nothing.
    errors: list[str] = field(default_factory=list)
    items: dict[tuple[str, str], Item] = field(default_factory=dict)

    @property
    def gaps(self) -> list[Item]:
        """What no case exercises; a part inside a mapping or request no case reaches is
        left out (the unreached mapping or request is the gap to fix first)."""
        unreached = [i.pointer + "/" for i in self.items.values() if not i.covered and i.kind in ("mapping", "request")]
        return [i for i in self.items.values() if not i.covered and not any(i.pointer.startswith(u) for u in unreached)]

    @property
    def covered(self) -> int:
        return sum(item.covered for item in self.items.values())

    def locate(self, item: Item) -> Location:
        where = self.preset.source.locate(item.pointer.split("#", 1)[0])
        return replace(where, file=str(display_path(Path(where.file))))

    def lines(self) -> list[str]:
        """Each gap as ``file:line:col: /pointer: what``, in preset order."""
        return [f"{self.locate(i)}: {i.pointer}: {i.what}" for i in self.gaps] + [
            f"error: {message}" for message in self.errors
        ]

    def add(self, kind: str, pointer: str, what: str) -> Item:
        return self.items.setdefault((kind, pointer), Item(kind, pointer, what))

    def hit(self, kind: str, pointer: str) -> None:
        item = self.items.get((kind, pointer))
        if item is not None:
            item.covered = True


def _records_error(expected: dict[str, Any]) -> bool:
    """A batch case that pins an event's error on purpose."""
    return any(event.get("decision") == "error" for event in expected.get("events", []) if isinstance(event, dict))


def measure(preset: CompiledPreset, cases: list[GoldenCase]) -> CoverageReport:
    """Run ``cases`` through ``preset`` and report what they exercise."""
    report = CoverageReport(preset)
    data = preset.source.data
    used = _names_read(data)
    _declare(report, preset, data, used)
    consent = [s for s in preset.selectors.values() if any("consent" in p for p in s.paths)]
    first_consent_rule = _first_rule_reading(preset, {s.name for s in consent})
    for case in cases:
        report.cases += 1
        for event in case.all_events:  # a batch case exercises the preset with each of its events
            try:
                settings = preset.resolve_settings(case.settings, environ={})
                plan = decide(preset, event, settings, trace=True)
                _record_decision(report, preset, plan)
                _record_selectors(report, preset, plan, event, used)
                if _reached(preset, plan, first_consent_rule):
                    for selector in consent:
                        state = _consent_state(_selected(selector, plan, event))
                        report.hit("consent", f"/selectors/{selector.name}#{state}")
                if plan.action == "send":
                    _record_fields(report, preset, plan)
                    _record_steps(report, preset, plan, case)
            except RelayError as exc:
                # A case that records an error on purpose exercises what ran before it; any other
                # error means the case tells nothing about the rest.
                expected = case.expected if case.has_expectation and isinstance(case.expected, dict) else {}
                if expected.get("decision") != "error" and not _records_error(expected):
                    report.errors.append(f"{case.path}: {exc}")
    return report


# -- what there is to cover ----------------------------------------------------------


def _declare(report: CoverageReport, preset: CompiledPreset, data: Mapping[str, Any], used: set[str]) -> None:
    for name, selector in preset.selectors.items():
        if name not in used:
            continue  # a selector nothing reads (from a shared fragment) has nothing to cover
        pointers = _fallback_pointers(data, selector)
        for index, path in enumerate(selector.paths):
            if len(pointers) > 1:
                report.add("fallback", pointers[index], f"fallback '{path}' never supplies '{name}' in a golden")
            alternatives = _alternatives(path)
            for number in range(len(alternatives)) if len(alternatives) > 1 else ():
                report.add(
                    "fallback",
                    f"{pointers[index]}#{number + 1}",
                    f"alternative {number + 1} of '{path}' never supplies '{name}' in a golden",
                )
    for mapping in preset.mappings:
        # A mapping that drops is covered when taken; any other, when a case sends through it.
        verb = "taken" if mapping.drop is not None else "sent through"
        report.add("mapping", mapping.pointer, f"mapping '{mapping.name}' is never {verb} by a golden")
    for rule in preset.rules:
        report.add("rule", rule.pointer, f"rule '{rule.name}' never fires in a golden")
    for selector in preset.selectors.values():
        if any("consent" in p for p in selector.paths):
            for state in CONSENT_STATES:
                report.add(
                    "consent",
                    f"/selectors/{selector.name}#{state}",
                    f"no golden reaches the rules with consent {state} ('{selector.name}')",
                )
    for index, step in enumerate(preset.steps):
        report.add("request", step.pointer, f"request '{step.name}' is never sent by a golden")
        if step.when is not None:
            report.add("request", f"{step.pointer}/when", f"request '{step.name}' is never skipped (its `when` false)")
        if step.bind is not None:
            report.add("request", f"{step.pointer}/as#answered", f"no golden gives an answer for '{step.bind}'")
            report.add("request", f"{step.pointer}/as#missing", f"no golden leaves '{step.bind}' without an answer")
        body = data["requests"][index].get("body")
        for pointer, _path in _template_leaves(body, f"{step.pointer}/body"):
            report.add("body", pointer, f"`{pointer}` renders null in every golden that sends '{step.name}'")
    for pointer, _path in _template_leaves(data.get("fields", {}), "/fields"):
        report.add("field", pointer, f"field `{pointer}` renders null in every golden")
    for mapping in preset.mappings:
        own = data["mappings"][int(mapping.pointer.rsplit("/", 1)[1])].get("fields", {})
        for pointer, _path in _template_leaves(own, f"{mapping.pointer}/fields"):
            report.add("field", pointer, f"field `{pointer}` renders null in every golden of '{mapping.name}'")


def _fallback_pointers(data: Mapping[str, Any], selector: SelectorSpec) -> list[str]:
    raw = data["selectors"][selector.name]
    base = f"/selectors/{selector.name}" + ("/from" if isinstance(raw, dict) else "")
    if (isinstance(raw, dict) and isinstance(raw.get("from"), list)) or isinstance(raw, list):
        return [f"{base}/{index}" for index in range(len(selector.paths))]
    return [base]


def _alternatives(path: str) -> list[Any]:
    """The alternatives of a JMESPath ``a || b || c`` (one, for any other expression)."""

    def flatten(node: Any) -> list[Any]:
        if node.get("type") == "or_expression":
            return [leaf for child in node["children"] for leaf in flatten(child)]
        return [node]

    return flatten(jmespath.compile(path).parsed)


def _template_leaves(node: Any, pointer: str, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(pointer, path) of every template leaf (a string with ``{{``) of a YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _template_leaves(value, f"{pointer}/{escape_pointer(key)}", (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _template_leaves(value, f"{pointer}/{index}", (*path, index))
    elif isinstance(node, str) and "{{" in node:
        yield pointer, path


# -- what the cases did --------------------------------------------------------------


def _record_decision(report: CoverageReport, preset: CompiledPreset, plan: Plan) -> None:
    mapping = next((m for m in preset.mappings if m.name == _trace(plan).mapping), None)
    if mapping is not None and (mapping.drop is not None or plan.action == "send"):
        report.hit("mapping", mapping.pointer)
    rules = {r.name: r for r in preset.rules}
    for entry in _trace(plan).rules:
        if entry["rule"] in rules:
            report.hit("rule", rules[entry["rule"]].pointer)


def _record_selectors(report: CoverageReport, preset: CompiledPreset, plan: Plan, event: Any, used: set[str]) -> None:
    data = preset.source.data
    for name, selector in preset.selectors.items():
        if name not in used:
            continue  # a selector nothing reads (from a shared fragment) has nothing to cover
        pointers = _fallback_pointers(data, selector)
        for index, path in enumerate(selector.paths):
            if _trace(plan).selectors.get(name) != path:
                continue
            report.hit("fallback", pointers[index])
            alternatives = _alternatives(path)
            if len(alternatives) > 1:
                report.hit("fallback", f"{pointers[index]}#{_winning(alternatives, event) + 1}")


def _winning(alternatives: list[Any], event: Any) -> int:
    """Which alternative of ``a || b`` gave the value: the first that is not JMESPath-false."""
    interpreter = TreeInterpreter()
    for index, node in enumerate(alternatives):
        if interpreter.visit(node, event) not in (None, False, "", [], {}):
            return index
    return len(alternatives) - 1


def _record_fields(report: CoverageReport, preset: CompiledPreset, plan: Plan) -> None:
    rendered = plan.context.get("fields") or {}
    data = preset.source.data
    leaves = list(_template_leaves(data.get("fields", {}), "/fields"))
    mapping = next((m for m in preset.mappings if m.name == _trace(plan).mapping), None)
    if mapping is not None:
        own = data["mappings"][int(mapping.pointer.rsplit("/", 1)[1])].get("fields", {})
        leaves += list(_template_leaves(own, f"{mapping.pointer}/fields"))
    for pointer, path in leaves:
        if _at(rendered, path) is not None:
            report.hit("field", pointer)


def _record_steps(report: CoverageReport, preset: CompiledPreset, plan: Plan, case: GoldenCase) -> None:
    data = preset.source.data
    for index, step in enumerate(preset.steps):
        if step.batch is not None and step.batch.only:  # sent only batched: a batch case covers it
            if not case.batch:
                continue
            item = render_item(preset, plan, step, answers=case.answers, now=case.now)
            report.hit("request", step.pointer if item is not None else f"{step.pointer}/when")
            continue
        request = build(preset, plan, step, answers=case.answers, now=case.now)
        if request is None:
            report.hit("request", f"{step.pointer}/when")
            continue
        report.hit("request", step.pointer)
        if step.bind is not None:
            answered = case.answers.get(step.bind) is not None
            report.hit("request", f"{step.pointer}/as#{'answered' if answered else 'missing'}")
        for pointer, path in _template_leaves(data["requests"][index].get("body"), f"{step.pointer}/body"):
            if _at(request.body, path) is not None:
                report.hit("body", pointer)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


# -- consent -------------------------------------------------------------------------


def _selected(selector: SelectorSpec, plan: Plan, event: Any) -> Any:
    """The value a selector took for this event (decide keeps only the path that won)."""
    path = _trace(plan).selectors.get(selector.name)
    if path is None:
        return selector.default
    value = dict(selector.pairs)[path](event)
    return selector.transform({"value": value}) if selector.transform is not None else value


def _consent_state(value: Any) -> str:
    if isinstance(value, Mapping):
        flags = [v for v in value.values() if isinstance(v, bool)]
        return "withdrawn" if False in flags else "granted" if True in flags else "unknown"
    return {True: "granted", False: "withdrawn"}.get(value, "unknown") if isinstance(value, bool) else "unknown"


def _first_rule_reading(preset: CompiledPreset, names: set[str]) -> int | None:
    """The position of the first rule whose condition or values read one of ``names``."""
    data = preset.source.data
    for index, rule in enumerate(data.get("rules", [])):
        if _names_read(rule) & names:
            return index
    return None


def _reached(preset: CompiledPreset, plan: Plan, first: int | None) -> bool:
    """Did the event get as far as the first rule reading consent (or, with none, get sent)?"""
    if plan.action == "send":
        return True
    if first is None or _trace(plan).mapping is None:
        return False
    order = [r.name for r in preset.rules]
    return plan.rule in order and order.index(plan.rule) >= first


def _names_read(node: Any, key: str = "") -> set[str]:
    """Every name the templates and expressions of a YAML tree read."""
    if isinstance(node, dict):
        return set().union(*(_names_read(v, str(k)) for k, v in node.items())) if node else set()
    if isinstance(node, list):
        return set().union(*(_names_read(v, key) for v in node)) if node else set()
    if not isinstance(node, str) or (key not in _EXPRESSION_KEYS and "{{" not in node):
        return set()
    try:
        return set(meta.find_undeclared_variables(parse(node if "{{" in node else f"{{{{ {node} }}}}")))
    except Exception:  # not Jinja after all (a literal with braces): it reads nothing
        return set()


def _trace(plan: Plan) -> Trace:
    assert plan.trace is not None, "coverage decides with trace=True"
    return plan.trace

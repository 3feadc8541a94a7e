"""Turn a preset file into a CompiledPreset, or report every problem in it at once.

All compiling happens here: ``extends`` is resolved and merged (compose.py), then
JMESPath selectors, Jinja templates, rule predicates and the request schemas'
validators are compiled. Rendering an event afterwards compiles nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from jinja2 import nodes

from .. import bundled
from ..errors import PresetErrors, PresetNotFound, TemplateError
from ..expr.templates import Allowed, did_you_mean, parse
from .builder import Builder, leaf_names, leaves
from .compile_batch import compile_batch
from .compile_policy import compile_checks, compile_delivery
from .compile_request import compile_auths, compile_steps
from .compose import load_composed
from .flow import Flow
from .model import Auths, CompiledPreset, MappingSpec, MatchClause, RuleSpec, SelectorSpec, StepSpec
from .program_write import write_program
from .schema import schema_errors
from .settings import SettingSpec
from .source import SourceDoc

__all__ = ["BUILTIN_NAMES", "compile_preset", "load_preset", "resolve_extends"]

#: Names every template may use besides selectors and variables.
BUILTIN_NAMES = ("event", "settings", "mapping", "constants", "fields", "now", "content")
#: Sections a preset must have once everything it extends is merged in.
REQUIRED_SECTIONS = ("metadata", "mappings", "requests")


#: Where the bundled shared fragments live (inside the bundled presets folder).
SHARED = "_shared"


def resolve_extends(reference: str, from_file: Path) -> Path:
    """An ``extends`` entry: a path relative to the file, or a name: a preset beside this
    one, then a bundled preset, then a bundled shared fragment (``contact``, ``consent``...)."""
    if "/" in reference or reference.endswith((".yaml", ".yml")):
        target = (from_file.parent / reference).resolve()
        if not target.is_file():
            raise PresetNotFound(f"no file {target}")
        return target
    candidates = [
        from_file.resolve().parent.parent / reference / "preset.yaml",
        bundled.presets_dir() / reference / "preset.yaml",
        bundled.presets_dir() / SHARED / f"{reference}.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file() and candidate.resolve() != from_file.resolve():
            return candidate
    shared = sorted(p.stem for p in (bundled.presets_dir() / SHARED).glob("*.yaml"))
    raise PresetNotFound(f"no preset or shared fragment named {reference!r} (shared fragments: {', '.join(shared)})")


def load_preset(path: str | Path, text: str | None = None) -> CompiledPreset:
    """Load, compose, validate and compile the preset at ``path``; PresetErrors lists all problems.

    With ``text``, that is the file's content (an editor's unsaved text); ``extends`` still
    resolves from where the file is.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "preset.yaml"
    return compile_preset(load_composed(path, resolve_extends, text))


def compile_preset(doc: SourceDoc) -> CompiledPreset:
    missing = [s for s in REQUIRED_SECTIONS if not isinstance(doc.data, dict) or s not in doc.data]
    errors = [
        e for e in schema_errors(doc) if not (e.pointer in ("", "/") and any(f"'{s}'" in e.message for s in missing))
    ]
    for section in missing:
        errors.append(doc.error("", f"a preset needs `{section}` (here, or in a preset it extends)"))
    if errors:
        # The structure is not trustworthy; semantic checks would only add noise.
        raise PresetErrors(errors)
    compiler = _PresetCompiler(doc)
    preset = compiler.build()
    if compiler.errors:
        raise PresetErrors(compiler.errors)
    try:
        program = write_program(preset, [*compiler.leaves, *compiler.flow.leaves])
    except TemplateError as problem:  # checked already, so not expected: still located, never a crash
        raise PresetErrors([doc.error("", problem.message, hint=problem.hint)]) from None
    return replace(preset, program=program)


class _PresetCompiler(Builder):
    """The top-level sections; ``requests``, ``delivery`` and ``checks`` have modules of their own."""

    def build(self) -> CompiledPreset:
        data = self.data
        settings = self._settings()
        self.flow = Flow(data, [name for name, spec in settings.items() if spec.secret])
        selectors = self._selectors()
        variables = self._variables(selectors)
        mapping_names = [m["name"] for m in data["mappings"]]
        constants = data.get("constants", {})
        base_allowed: dict[str, Any] = {
            **{name: None for name in selectors},
            **{name: None for name in variables},
            "event": None,
            "settings": list(settings),
            "mapping": (),
            "constants": list(constants),
        }
        rules = self._rules(base_allowed, mapping_names)
        field_keys = set(data.get("fields", {}))
        for mapping in data["mappings"]:
            field_keys.update(mapping.get("fields", {}))
        base_fields = self.tree(data.get("fields", {}), base_allowed, "/fields")
        mappings = self._mappings(base_allowed)
        event_allowed: Allowed = {**base_allowed, "fields": sorted(field_keys)}
        side_allowed: Allowed = {"settings": list(settings), "constants": list(constants)}
        auth = compile_auths(self, data.get("auth"), side_allowed, "/auth")
        steps = self._batches(compile_steps(self, data["requests"], event_allowed, auth), event_allowed, auth)
        answer_names = {step.bind: None for step in steps if step.bind}
        delivery = compile_delivery(
            self,
            data.get("delivery", {}),
            event_allowed,
            {**event_allowed, **answer_names, "response": None, "text": None, "status": None, "step": None},
        )
        checks = compile_checks(self, data.get("checks", []), side_allowed, auth)
        return CompiledPreset(
            name=data["metadata"]["name"],
            path=Path(self.doc.file),
            metadata=dict(data["metadata"]),
            settings=settings,
            selectors=selectors,
            variables=variables,
            rules=rules,
            base_fields=base_fields,
            mappings=mappings,
            steps=steps,
            delivery=delivery,
            checks=checks,
            constants=constants,
            source=self.doc,
            shared_field_names=leaf_names(data.get("fields", {})),
            extends=tuple(dict.fromkeys(location.file for location in self.doc.values.values())),
        )

    def _batches(self, steps: tuple[StepSpec, ...], allowed: Allowed, auth: Auths) -> tuple[StepSpec, ...]:
        """Each step with its compiled ``batch``; the batching rules that span steps are checked here."""
        out = []
        bound: dict[str, Any] = {}
        delivery = self.data.get("delivery", {})
        batches = [raw["batch"] for raw in self.data["requests"] if isinstance(raw.get("batch"), dict)]
        for name, part in (("items", "item"), ("group", "group")):  # what reviews of bulk bodies must hide
            if any(self.flow.leaf_reads_secret(leaf) for batch in batches for leaf in leaves(batch.get(part))):
                self.flow.secret_variables.add(name)
        for step, raw in zip(steps, self.data["requests"], strict=True):
            scope = {**allowed, **bound, "now": None}
            if step.bind is not None:
                bound[step.bind] = None
            if delivery.get("coalesce") and step.role == "track":
                self.error(
                    f"{step.pointer}/role",
                    "`delivery.coalesce` merges a contact's events into one: a `track` request would be sent"
                    " once for several events",
                    hint="remove `coalesce`, so a contact's events go in successive batches",
                )
            if "batch" not in raw:
                out.append(step)
                continue
            pointer = f"{step.pointer}/batch"
            if step.role == "read" or step.bind is not None:
                self.error(pointer, "a `read` request (or one with `as`) cannot batch: its answer binds per event")
            batch = compile_batch(self, raw["batch"], scope, auth, raw, pointer)
            if batch.results is not None and batch.results.key is not None and batch.key is None:
                self.error(f"{pointer}/results/key", "errors map back by `key`: give the batch a `key` too")
            out.append(replace(step, batch=batch))
        if delivery.get("coalesce") and "order_by" not in delivery:
            self.error("/delivery/coalesce", "`coalesce` merges the events of one contact: it needs `order_by`")
        return tuple(out)

    def _settings(self) -> dict[str, SettingSpec]:
        specs: dict[str, SettingSpec] = {}
        for name, raw in self.data.get("settings", {}).items():
            pointer = f"/settings/{name}"
            spec = SettingSpec(
                name=name,
                type=raw["type"],
                required=raw.get("required", False),
                secret=raw.get("secret", False),
                enum=tuple(raw["enum"]) if "enum" in raw else None,
                default=raw.get("default"),
                env=raw.get("env"),
                description=raw.get("description", ""),
                pattern=raw.get("pattern"),
            )
            if spec.pattern is not None:
                try:
                    re.compile(spec.pattern)
                except re.error as exc:
                    self.error(f"{pointer}/pattern", f"invalid regular expression: {exc}")
                    spec = replace(spec, pattern=None)
            if spec.secret and spec.default is not None:
                self.error(
                    f"{pointer}/default",
                    "a secret setting must not have a default written in the preset",
                    hint="remove the default; supply it in the settings file or through `env`",
                )
            elif spec.default is not None and (problem := spec.type_problem(spec.default)):
                self.error(f"{pointer}/default", f"default does not fit the setting: {problem}")
            for index, option in enumerate(spec.enum or ()):
                if (problem := spec.type_problem(option)) and "not one of" not in problem:
                    self.error(f"{pointer}/enum/{index}", f"enum value does not fit the setting: {problem}")
            specs[name] = spec
        return specs

    def _selectors(self) -> dict[str, SelectorSpec]:
        out: dict[str, SelectorSpec] = {}
        for name, raw in self.data.get("selectors", {}).items():
            pointer = f"/selectors/{name}"
            if isinstance(raw, dict):
                paths_raw, default, transform_src = raw["from"], raw.get("default"), raw.get("transform")
                paths_pointer = f"{pointer}/from"
            else:
                paths_raw, default, transform_src, paths_pointer = raw, None, None, pointer
            paths = [paths_raw] if isinstance(paths_raw, str) else list(paths_raw)
            searchers = []
            for index, path in enumerate(paths):
                where = paths_pointer if isinstance(paths_raw, str) else f"{paths_pointer}/{index}"
                searchers.append(self.path(path, where))
            transform = None
            if transform_src is not None:
                transform = self.expression(transform_src, {"value": None}, f"{pointer}/transform")
            out[name] = SelectorSpec(
                name=name,
                paths=tuple(paths),
                searchers=tuple(searchers),
                transform=transform,
                default=default,
                transform_source=transform_src,
            )
        return out

    def _variables(self, selectors: dict[str, SelectorSpec]) -> dict[str, Any]:
        """The names rules set, in the order first set: each null until a rule sets it."""
        variables: dict[str, Any] = {}
        for name in selectors:
            if name in BUILTIN_NAMES:
                self.error(f"/selectors/{name}", f"'{name}' is a reserved name", key=True)
        for index, rule in enumerate(self.data.get("rules", [])):
            for name in rule.get("set", {}):
                if name in BUILTIN_NAMES or name in selectors:
                    self.error(
                        f"/rules/{index}/set/{name}",
                        f"'{name}' is already a selector or a reserved name",
                        key=True,
                        hint="rules set variables of their own; pick another name",
                    )
                variables.setdefault(name, None)
        return variables

    def _rules(self, allowed: Allowed, mapping_names: list[str]) -> tuple[RuleSpec, ...]:
        rules: list[RuleSpec] = []
        seen: set[str] = set()
        unconditional_drop: str | None = None
        for index, raw in enumerate(self.data.get("rules", [])):
            pointer = f"/rules/{index}"
            name = raw["name"]
            if name in seen:
                self.error(f"{pointer}/name", f"duplicate rule name '{name}'")
            seen.add(name)
            if ("drop" in raw) == ("set" in raw):
                self.error(pointer, "a rule either drops (`drop: reason`) or sets variables (`set: {...}`)")
            if unconditional_drop is not None:
                self.error(
                    pointer,
                    f"rule '{name}' can never fire: rule '{unconditional_drop}' drops every event before it",
                    hint="give the earlier rule a `when`, or move this rule above it",
                )
            when = None
            if "when" in raw:
                when = self.expression(raw["when"], allowed, f"{pointer}/when")
                self._check_mapping_refs(raw["when"], mapping_names, f"{pointer}/when")
            elif "drop" in raw:
                unconditional_drop = name
            sets = []
            for var, value in raw.get("set", {}).items():
                sets.append((var, self.tree(value, allowed, f"{pointer}/set/{var}")))
            rules.append(
                RuleSpec(
                    name=name,
                    pointer=pointer,
                    when=when,
                    drop=raw.get("drop"),
                    sets=tuple(sets),
                    when_source=raw.get("when"),
                    set_sources=dict(raw.get("set", {})),
                )
            )
        return tuple(rules)

    def _check_mapping_refs(self, source: str, mapping_names: list[str], pointer: str) -> None:
        try:
            tree = parse("{{ " + source + " }}")
        except Exception:  # syntax errors are reported by _expression
            return
        for compare in tree.find_all(nodes.Compare):
            operands = [compare.expr, *(op.expr for op in compare.ops)]
            if not any(isinstance(o, nodes.Name) and o.name == "mapping" for o in operands):
                continue
            for operand in operands:
                for const in [operand] if isinstance(operand, nodes.Const) else list(operand.find_all(nodes.Const)):
                    if isinstance(const.value, str) and const.value not in mapping_names:
                        self.error(
                            pointer,
                            f"no mapping is named '{const.value}'",
                            hint=did_you_mean(const.value, mapping_names) or f"mappings: {', '.join(mapping_names)}",
                        )

    def _mappings(self, allowed: Allowed) -> tuple[MappingSpec, ...]:
        out: list[MappingSpec] = []
        seen: set[str] = set()
        catch_all: str | None = None
        for index, raw in enumerate(self.data["mappings"]):
            pointer = f"/mappings/{index}"
            if raw["name"] in seen:
                self.error(f"{pointer}/name", f"duplicate mapping name '{raw['name']}'")
            seen.add(raw["name"])
            if catch_all is not None:
                self.error(
                    pointer,
                    f"mapping '{raw['name']}' can never match: mapping '{catch_all}' has no `match`"
                    " and takes every event",
                    hint="put the mapping without `match` last",
                )
            if "drop" in raw and raw.get("fields"):
                self.error(f"{pointer}/fields", "a mapping that drops sends nothing: its fields are never used")
            match = raw.get("match", [])
            clauses_raw = match if isinstance(match, list) else [match]
            if "match" not in raw:
                catch_all = raw["name"]
            clauses = []
            for c_index, clause in enumerate(clauses_raw):
                c_pointer = f"{pointer}/match" + (f"/{c_index}" if isinstance(match, list) else "")
                if not clause:
                    self.error(
                        c_pointer, "an empty match fits every event", hint="name a `type`, an `event` or a `when`"
                    )
                when = self.expression(clause["when"], allowed, f"{c_pointer}/when") if "when" in clause else None
                clauses.append(
                    MatchClause(
                        types=_names(clause.get("type")),
                        events=_names(clause.get("event")),
                        when=when,
                        when_source=clause.get("when"),
                    )
                )
            fields = self.tree(raw.get("fields", {}), allowed, f"{pointer}/fields")
            out.append(
                MappingSpec(
                    name=raw["name"],
                    pointer=pointer,
                    clauses=tuple(clauses),
                    fields=fields,
                    field_names=leaf_names(raw.get("fields", {})),
                    drop=raw.get("drop"),
                )
            )
        return tuple(out)


def _names(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)

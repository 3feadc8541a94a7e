"""Turn a loaded preset into a CompiledPreset, or report every problem in it at once.

All compiling happens here: JMESPath selectors, Jinja templates, rule predicates
and the request schema's validator. Rendering an event afterwards compiles nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import nodes

from ..errors import PresetError, PresetErrors, TemplateError
from ..expr.templates import Allowed, compile_expression, did_you_mean, parse
from .builder import Builder, leaf_names
from .compile_policy import compile_checks, compile_delivery, compile_lookup
from .compile_request import compile_request
from .flow import Flow
from .model import CompiledPreset, MappingSpec, MatchClause, RuleSpec, SelectorSpec
from .schema import schema_errors
from .settings import SettingSpec
from .source import SourceDoc, load_yaml

__all__ = ["BUILTIN_NAMES", "compile_preset", "load_preset"]

#: Names every template may use besides selectors and variables.
BUILTIN_NAMES = ("event", "settings", "mapping")


def load_preset(path: str | Path) -> CompiledPreset:
    """Load, validate and compile the preset at ``path``; raise PresetErrors listing all problems."""
    path = Path(path)
    if path.is_dir():
        path = path / "preset.yaml"
    try:
        doc = load_yaml(path)
    except PresetError as exc:
        raise PresetErrors([exc]) from None
    return compile_preset(doc)


def compile_preset(doc: SourceDoc) -> CompiledPreset:
    errors = schema_errors(doc)
    if errors:
        # The structure is not trustworthy; semantic checks would only add noise.
        raise PresetErrors(errors)
    compiler = _PresetCompiler(doc)
    preset = compiler.build()
    if compiler.errors:
        raise PresetErrors(compiler.errors)
    return preset


class _PresetCompiler(Builder):
    """The top-level sections; ``request``, ``delivery`` and ``check`` have modules of their own."""

    # -- sections ---------------------------------------------------------------

    def build(self) -> CompiledPreset:
        data = self.data
        settings = self._settings()
        self.flow = Flow(data, [name for name, spec in settings.items() if spec.secret])
        selectors = self._selectors()
        variables = dict(data.get("variables", {}))
        self._check_names(selectors, variables)
        mapping_names = [m["name"] for m in data["mappings"]]
        constants = data.get("constants", {})
        base_allowed: Allowed = {
            **{name: None for name in selectors},
            **{name: None for name in variables},
            "event": None,
            "settings": list(settings),
            "mapping": (),
            "constants": list(constants),
        }
        rules = self._rules(base_allowed, variables, mapping_names)
        field_keys = set(data.get("fields", {}))
        for mapping in data["mappings"]:
            field_keys.update(mapping.get("fields", {}))
        base_fields = self.tree(data.get("fields", {}), base_allowed, "/fields")
        mappings = self._mappings(base_allowed)
        request_allowed: dict[str, Any] = {**base_allowed, "fields": sorted(field_keys)}
        # The read-before-write answer exists only once the lookup is sent: after the
        # decision, so only the request itself may read it, never rules or fields.
        lookup_raw = data["request"].get("lookup")
        lookup = compile_lookup(self, lookup_raw, request_allowed)
        if lookup_raw is not None:
            request_allowed[lookup_raw["as"]] = None
        request = compile_request(self, data["request"], request_allowed)
        side_allowed: Allowed = {"settings": list(settings), "constants": list(constants)}
        hint_allowed: Allowed = {**side_allowed, "response": None, "text": None, "status": None}
        delivery = compile_delivery(self, data.get("delivery", {}), base_allowed, hint_allowed)
        checks = compile_checks(self, data.get("check", []), side_allowed)
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
            unmapped_reason=data.get("unmapped", {}).get("drop", "no mapping matches this event"),
            request=request,
            delivery=delivery,
            lookup=lookup,
            checks=checks,
            constants=constants,
            source=self.doc,
            shared_field_names=leaf_names(data.get("fields", {})),
        )

    def _settings(self) -> dict[str, SettingSpec]:
        specs: dict[str, SettingSpec] = {}
        for name, raw in self.data["settings"].items():
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
            )
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
        for name, raw in self.data["selectors"].items():
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
                try:
                    transform = compile_expression(f"value | {transform_src}", {"value": None})
                except TemplateError as problem:
                    self.template_error(f"{pointer}/transform", problem)
            out[name] = SelectorSpec(
                name=name,
                paths=tuple(paths),
                searchers=tuple(searchers),
                transform=transform,
                default=default,
                transform_source=transform_src,
            )
        return out

    def _check_names(self, selectors: dict[str, SelectorSpec], variables: dict[str, Any]) -> None:
        for name in selectors:
            if name in BUILTIN_NAMES:
                self.error(f"/selectors/{name}", f"'{name}' is a reserved name", key=True)
        for name in variables:
            if name in BUILTIN_NAMES or name in selectors:
                self.error(f"/variables/{name}", f"'{name}' is already a selector or reserved name", key=True)

    def _rules(self, allowed: Allowed, variables: dict[str, Any], mapping_names: list[str]) -> tuple[RuleSpec, ...]:
        rules: list[RuleSpec] = []
        seen: set[str] = set()
        unconditional_drop: str | None = None
        for index, raw in enumerate(self.data.get("rules", [])):
            pointer = f"/rules/{index}"
            name = raw["name"]
            if name in seen:
                self.error(f"{pointer}/name", f"duplicate rule name '{name}'")
            seen.add(name)
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
                if var not in variables:
                    self.error(
                        f"{pointer}/set/{var}",
                        f"rule sets undeclared variable '{var}'",
                        key=True,
                        hint=did_you_mean(var, variables) or "declare it under `variables:` with a default",
                    )
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
        for index, raw in enumerate(self.data["mappings"]):
            pointer = f"/mappings/{index}"
            if raw["name"] in seen:
                self.error(f"{pointer}/name", f"duplicate mapping name '{raw['name']}'")
            seen.add(raw["name"])
            clauses_raw = raw["match"] if isinstance(raw["match"], list) else [raw["match"]]
            clauses = []
            for c_index, clause in enumerate(clauses_raw):
                c_pointer = f"{pointer}/match" + (f"/{c_index}" if isinstance(raw["match"], list) else "")
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
                )
            )
        return tuple(out)


def _names(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)

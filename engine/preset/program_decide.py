"""The ``decide`` function of a preset's program: selectors, mapping, rules, fields, order key.

Written in the order ``runtime.decide`` documents: the mapping is chosen, a mapping that
drops drops, the rules run in order (a drop stops at once; the first rule to set a variable
wins), then the chosen mapping's fields are rendered (the shared fields with the mapping's
own merged over them, key by key) and the order key. A selector is computed just before the
first statement that reads it, so an event that is dropped early reads only what its drop
needed; a send reads every selector that something after ``decide`` may read.

``decide(n_event, n_settings, n_constants, S, T)`` returns ``(action, reason, rule, mapping,
context, order_key)``; ``T`` is None, or the list the rules' trace goes to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..expr.codegen import Scope
from ..expr.emit import Module, Origin, Writer, literal
from ..expr.helpers import deep_merge
from ..expr.leaves import Leaf, context_names, has_template, write_tree, write_value
from ..expr.paths import plain_path
from ..jsonpointer import escape_pointer
from .program import FIXED, Hoister

if TYPE_CHECKING:
    from .model import CompiledPreset, MappingSpec, RuleSpec, SelectorSpec

__all__ = ["NO_MAPPING", "downstream_names", "write_decide"]

#: The drop reason for an event no mapping takes (a mapping without `match` gives its own).
NO_MAPPING = "no mapping matches this event"
Where = Callable[[str], str]


def downstream_names(leaves: Iterable[Leaf]) -> set[str]:
    """The names the requests and delivery may read from a plan's context."""
    return {
        name
        for leaf in leaves
        if leaf.pointer.startswith(("/requests", "/delivery/responses", "/delivery/error_message")) or not leaf.pointer
        for name in leaf.names
    }


class _Decide:
    def __init__(self, module: Module, preset: CompiledPreset, hoister: Hoister, where: Where) -> None:
        self.module = module
        self.preset = preset
        self.where = where
        self.writer = Writer(module)
        names = [*preset.selectors, *preset.variables, "event", "settings", "mapping", "constants", "fields"]
        self.scope = Scope(context_names(names), dicts=frozenset({"settings", "constants"}), fixed=FIXED, hoist=hoister)
        self.hoister = hoister
        self.computed: set[str] = set()

    def origin(self, pointer: str) -> Origin:
        return Origin(pointer, self.where(pointer))

    # -- selectors ------------------------------------------------------------------

    def need(self, names: Iterable[str]) -> None:
        """Compute, here, each selector among ``names`` not computed on this path yet."""
        for name in self.preset.selectors:
            if name in names and name not in self.computed:
                self.selector(self.preset.selectors[name])
                self.computed.add(name)

    def selector(self, spec: SelectorSpec) -> None:
        writer, target = self.writer, f"n_{spec.name}"
        previous, writer.origin = writer.origin, self.origin(f"/selectors/{spec.name}")
        for index, (path, search) in enumerate(spec.pairs):
            if index == 0:
                writer.line(f"{target} = {self.path(path, search)}")
                self.transform(spec, target)
                continue
            writer.line(f"if {target} is None:")
            with writer.block():  # a fallback: what it reads is read here, only when it is needed
                known = set(self.computed)
                writer.line(f"{target} = {self.path(path, search)}")
                self.transform(spec, target)
                self.computed = known
        if spec.default is not None:
            writer.line(f"if {target} is None:")
            with writer.block():
                writer.line(f"{target} = {literal(spec.default) or self.module.name(spec.default, 'default')}")
        writer.origin = previous

    def prefix(self, parts: tuple[str, ...]) -> str:
        """The local holding the value at ``parts`` in the event (computed here, once)."""
        local = "_e_" + "_".join(f"{len(part)}{''.join(c if c.isalnum() else '_' for c in part)}" for part in parts)
        if "." + local not in self.computed:
            self.computed.add("." + local)  # a name no selector has
            self.writer.line(f"{local} = {self.field(parts[:-1], parts[-1])}")  # read once: several paths pass here
        return local

    def field(self, parents: tuple[str, ...], key: str) -> str:
        """A JMESPath field of the value at ``parents`` (the event itself when empty)."""
        if not parents:
            return f"n_event.get({key!r})"  # the event is a mapping
        holder = self.prefix(parents)
        field = self.module.name(_field, "field")
        other = f"None if {holder} is None else {field}({holder}, {key!r})"
        return f"({holder}.get({key!r}) if {holder}.__class__ is dict else {other})"

    def transform(self, spec: SelectorSpec, target: str) -> None:
        transform = spec.transform
        if not isinstance(transform, Leaf):
            return
        self.writer.line(f"if {target} is not None:")
        with self.writer.block():
            scope = Scope({"value": target})
            self.writer.line(f"{target} = {write_value(self.module, self.writer, transform.source, scope)}")

    def path(self, path: str, search: Any) -> str:
        """A selector path over the event: plain paths as dict lookups, as JMESPath reads them."""
        parts = plain_path(path)
        if parts is None:
            return f"{self.module.name(search, 'jmespath')}(n_event)"
        return self.field(parts[:-1], parts[-1])

    # -- the whole function ---------------------------------------------------------

    def write(self, downstream: set[str]) -> None:
        preset, writer = self.preset, self.writer
        for variable, initial in preset.variables.items():
            writer.line(f"n_{variable} = {literal(initial) or self.module.name(initial, 'initial')}")
        writer.line("n_mapping = None")
        writer.line("_fired = []")
        self.match()
        names = tuple(mapping.name for mapping in preset.mappings)
        writer.line(f"n_mapping = {names!r}[_m]")
        counts: dict[str, int] = {}
        for rule in preset.rules:
            for variable, _tree in rule.sets:
                counts[variable] = counts.get(variable, 0) + 1
        self.multiple = {variable for variable, count in counts.items() if count > 1}
        self.seen: set[str] = set()
        for variable in sorted(self.multiple):
            writer.line(f"_set_{variable} = False")
        for rule in preset.rules:
            self.rule(rule)
        for index, mapping in enumerate(preset.mappings):
            if mapping.drop is not None:
                continue
            writer.line(f"if _m == {index}:")
            with writer.block():
                computed = set(self.computed)
                self.send(mapping, downstream)
                self.computed = computed
        writer.line("raise AssertionError('unreachable')")
        self.module.add("def decide(n_event, n_settings, n_constants, S, T):", writer, Origin("/mappings"))

    def match(self) -> None:
        writer = self.writer
        whens = [c.when for m in self.preset.mappings for c in m.clauses if isinstance(c.when, Leaf)]
        self.need({name for when in whens for name in when.names})
        writer.line("_type = n_event.get('type')")
        writer.line("_name = n_event.get('event')")
        keyword, catch_all = "if", False
        for index, mapping in enumerate(self.preset.mappings):
            if not mapping.clauses:
                writer.line("else:" if keyword == "elif" else "if True:")
                catch_all = True
            else:
                condition = " or ".join(f"({self.clause(clause)})" for clause in mapping.clauses)
                writer.line(f"{keyword} {condition}:", self.origin(f"{mapping.pointer}/match"))
            with writer.block():
                writer.line(f"_m = {index}")
                if mapping.drop is not None:
                    writer.line(f"return ('drop', {mapping.drop!r}, {mapping.name!r}, {mapping.name!r}, None, None)")
            keyword = "elif"
            if catch_all:
                break
        if not catch_all:
            writer.line("else:" if keyword == "elif" else "if True:")
            with writer.block():
                writer.line(f"return ('drop', {NO_MAPPING!r}, 'unmapped', None, None, None)")

    def clause(self, clause: Any) -> str:
        parts = []
        for name, values in (("_type", clause.types), ("_name", clause.events)):
            if values is not None:
                parts.append(f"{name} == {values[0]!r}" if len(values) == 1 else f"{name} in {tuple(values)!r}")
        if isinstance(clause.when, Leaf):
            parts.append(write_value(self.module, self.writer, clause.when.source, self.scope))
        return " and ".join(f"({part})" for part in parts) or "True"

    # -- rules ----------------------------------------------------------------------

    def rule(self, rule: RuleSpec) -> None:
        writer = self.writer
        reads = set(rule.when.names) if isinstance(rule.when, Leaf) else set()
        for _variable, tree in rule.sets:
            reads |= tree.names if isinstance(tree, Leaf) else set()
        self.need(reads)
        trace = f"{{'rule': {rule.name!r}, 'effect': %s}}"
        if isinstance(rule.when, Leaf):
            condition = write_value(self.module, writer, rule.when.source, self.scope)
            writer.line(f"if {condition}:", self.origin(f"{rule.pointer}/when"))
        else:
            writer.line("if True:")
        with writer.block():
            if rule.drop is not None:
                writer.line(f"if T is not None: T.append({trace % repr('drop')})")
                writer.line(f"return ('drop', {rule.drop!r}, {rule.name!r}, n_mapping, None, None)")
                return
            # The first rule to set a variable wins: a variable an earlier rule may have set is
            # set here only if it has not been (a flag, for the variables several rules set).
            guarded = any(variable in self.seen for variable, _ in rule.sets)
            if guarded:
                writer.line("_applied = []")
            for variable, tree in rule.sets:
                assert isinstance(tree, Leaf)
                if variable in self.seen:
                    writer.line(f"if not _set_{variable}:")
                    writer.indent += 1
                code = write_tree(self.module, writer, tree.source, self.scope, tree.pointer, self.where)
                writer.line(f"n_{variable} = {code}")
                if variable in self.multiple:
                    writer.line(f"_set_{variable} = True")
                if guarded:
                    writer.line(f"_applied.append({variable!r})")
                if variable in self.seen:
                    writer.indent -= 1
            if guarded:
                writer.line(f"if _applied: _fired.append({rule.name!r})")
                effect = "'set ' + ', '.join(_applied) if _applied else 'overridden'"
                writer.line(f"if T is not None: T.append({trace % effect})")
            else:
                applied = ", ".join(variable for variable, _ in rule.sets)
                writer.line(f"_fired.append({rule.name!r})")
                writer.line(f"if T is not None: T.append({trace % repr('set ' + applied)})")
        self.seen.update(variable for variable, _ in rule.sets)

    # -- a send ---------------------------------------------------------------------

    def send(self, mapping: MappingSpec, downstream: set[str]) -> None:
        preset, writer = self.preset, self.writer
        shared, own = preset.base_fields, mapping.fields
        assert isinstance(shared, Leaf) and isinstance(own, Leaf)
        self.need(shared.names | own.names)
        fields = write_tree(self.module, writer, shared.source, self.scope, "/fields", self.where)
        _merge_tree(self, own.source, shared.source, fields, f"{mapping.pointer}/fields")
        writer.line(f"n_fields = {fields}")
        order = preset.delivery.order_by
        if isinstance(order, Leaf):
            self.need(order.names)
            code = write_value(self.module, writer, order.source, self.scope)
            writer.line(f"_key = {code}", self.origin("/delivery/order_by"))
            writer.line("_key = None if _key is None else str(_key)")
        else:
            writer.line("_key = None")
        self.need(downstream)
        members = [
            *(f"{name!r}: n_{name}" for name in preset.variables),
            *(f"{name!r}: n_{name}" for name in preset.selectors if name in self.computed),
            *(f"{name!r}: n_{name}" for name in ("event", "settings", "mapping", "constants", "fields")),
        ]
        writer.line("_c = {" + ", ".join(members) + "}")
        writer.line(f"return ('send', None, ', '.join(_fired) or None, {mapping.name!r}, _c, _key)")


def _merge_tree(decide: _Decide, own: Any, base: Any, out: str, pointer: str) -> None:
    """Write ``own`` (a mapping's fields) merged over the rendered ``base`` in ``out``, as
    ``runtime.decide.deep_merge`` merges: a key's value replaces the base's, except that two
    mappings merge key by key; a member that renders null leaves the base's in place."""
    module, writer, scope = decide.module, decide.writer, decide.scope
    merge = module.name(deep_merge, "deep_merge")
    mapping = module.name(Mapping, "Mapping")
    for key, value in (own or {}).items():
        child = f"{pointer}/{escape_pointer(str(key))}"
        below = base.get(key, _ABSENT) if isinstance(base, dict) else _ABSENT
        slot = f"{out}[{key!r}]"
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(below, dict):
            _merge_tree(decide, value, below, slot, child)  # both trees are ours: merge in place
            continue
        code = write_tree(module, writer, value, scope, child, decide.where)
        is_leaf = isinstance(value, str) and has_template(value)
        if below is _ABSENT:
            if is_leaf:
                writer.line(f"if {code} is not None:")
                with writer.block():
                    writer.line(f"{slot} = {code}")
            else:
                writer.line(f"{slot} = {code}")
            continue
        guard = f"{code} is not None and " if is_leaf else ""
        writer.line(f"_below = {out}.get({key!r})")
        writer.line(f"if {guard}isinstance({code}, {mapping}) and isinstance(_below, {mapping}):")
        with writer.block():
            writer.line(f"{slot} = {merge}(_below, {code})")
        if is_leaf:
            writer.line(f"elif {code} is not None:")
        else:
            writer.line("else:")
        with writer.block():
            writer.line(f"{slot} = {code}")


_ABSENT = object()


def _field(value: Any, key: str) -> Any:
    """A JMESPath field of a value that is not a dict: ``.get`` where it has one, else null."""
    try:
        return value.get(key)
    except AttributeError:
        return None


def write_decide(
    module: Module, preset: CompiledPreset, hoister: Hoister, where: Where, leaves: Iterable[Leaf]
) -> None:
    _Decide(module, preset, hoister, where).write(downstream_names(leaves))

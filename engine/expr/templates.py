"""The compiler for template trees, on the one sandboxed environment.

Every template in every preset is compiled here once, at load time. A leaf that
is exactly ``{{ expression }}`` is compiled with ``compile_expression`` so it keeps
its native type (a number stays a number, ``"478"`` stays a string); any other
string with Jinja in it renders to text; a string without Jinja is a constant.
Values from events only ever reach templates as data, never as template source.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from ..errors import TemplateError
from ..jsonpointer import escape_pointer
from .filters import to_json
from .leaves import Leaf, bind, has_template
from .sandbox import ENVIRONMENT
from .static import check_constants, check_depth, check_statements
from .syntax import parse, passes_through, single_expression

__all__ = [
    "REDACTED",
    "Allowed",
    "Leaf",
    "LeafHook",
    "LeafProblem",
    "Renderer",
    "compile_expression",
    "compile_tree",
    "did_you_mean",
    "expression_leaf",
    "inspect_template",
    "parse",
    "passes_through",
    "single_expression",
    "to_json",
    "tree_leaf",
]

Renderer = Callable[[Mapping[str, Any]], Any]
#: Each top-level name a template may use, with the attributes it has (None: any).
Allowed = Mapping[str, Iterable[str] | None]


#: What a review (a golden, ``relay render``, a dry run) shows in place of a secret.
REDACTED = "<redacted>"


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def inspect_template(source: str, allowed: Allowed) -> None:
    """Check syntax, statements, filters, tests, names and constant parts of ``source`` statically.

    ``allowed`` maps each top-level name to the attributes it has, or None where
    any attribute is fine (the event, whose shape is not known in advance).
    """
    tree = parse(source)
    everything = [tree, *tree.find_all(nodes.Node)]  # one walk; each check below picks its nodes
    check_statements(everything)
    check_depth(tree)
    for node in everything:
        if isinstance(node, nodes.Filter) and node.name not in ENVIRONMENT.filters:
            raise TemplateError(
                f"unknown filter '{node.name}'",
                line=node.lineno,
                hint=did_you_mean(node.name, ENVIRONMENT.filters)
                or f"known filters: {', '.join(sorted(ENVIRONMENT.filters))}",
            )
        if isinstance(node, nodes.Test) and node.name not in ENVIRONMENT.tests:
            raise TemplateError(
                f"unknown test '{node.name}'", line=node.lineno, hint=did_you_mean(node.name, ENVIRONMENT.tests)
            )
        if isinstance(node, (nodes.Filter, nodes.Test)) and node.name in _NAMING_FILTERS:
            _check_named(node)
    names = [node for node in everything if isinstance(node, nodes.Name)]
    assigned = {n.name for n in names if n.ctx in ("store", "param")} | _loop_names(everything)
    for name_node in names:
        if name_node.ctx == "load" and name_node.name not in allowed and name_node.name not in assigned:
            raise TemplateError(
                f"undefined name '{name_node.name}'",
                line=name_node.lineno,
                hint=did_you_mean(name_node.name, allowed) or f"names available here: {', '.join(sorted(allowed))}",
            )
    for attr_node in everything:
        if not isinstance(attr_node, nodes.Getattr):
            continue
        base = attr_node.node
        if isinstance(base, nodes.Name) and base.name not in assigned:
            members = allowed.get(base.name)
            if members is not None and attr_node.attr not in set(members):
                members = list(members)
                raise TemplateError(
                    f"'{base.name}.{attr_node.attr}' is not declared",
                    line=attr_node.lineno,
                    hint=_declare_hint(base.name, attr_node.attr, members),
                )
    check_constants(tree, everything)


#: Filters whose first argument names a test (``select('odd')``) or a filter (``map('upper')``).
_NAMING_FILTERS = {"select": "test", "reject": "test", "selectattr": "test", "rejectattr": "test", "map": "filter"}


def _check_named(node: nodes.Filter | nodes.Test) -> None:
    """A test or filter named by a constant argument must exist (else it fails only when it runs)."""
    kind = _NAMING_FILTERS[node.name]
    position = 1 if node.name in ("selectattr", "rejectattr") else 0
    if len(node.args) <= position or not isinstance(node.args[position], nodes.Const):
        return
    named = node.args[position].value  # type: ignore[attr-defined]
    known = ENVIRONMENT.tests if kind == "test" else ENVIRONMENT.filters
    if isinstance(named, str) and named not in known and not (node.name == "map" and "attribute" in named):
        raise TemplateError(f"unknown {kind} '{named}'", line=node.lineno, hint=did_you_mean(named, known))


def _loop_names(everything: list[nodes.Node]) -> set[str]:
    """``loop`` where a ``{% for %}`` body may read it."""
    for node in everything:
        if isinstance(node, nodes.For) and any(
            isinstance(inner, nodes.Name) and inner.name == "loop"
            for part in node.body
            for inner in (part, *part.find_all(nodes.Name))
        ):
            return {"loop"}
    return set()


def _declare_hint(section: str, name: str, declared: list[str]) -> str:
    guess = did_you_mean(name, declared)
    where = "`settings:`" if section == "settings" else f"the preset's `{section}`"
    return f"{guess + ' Or' if guess else 'Or'} declare '{name}' under {where}"


def compile_expression(expression: str, allowed: Allowed) -> Renderer:
    """Compile a bare Jinja expression into ``context -> native value`` (a function of its own)."""
    leaf = expression_leaf(expression, allowed)
    bind([leaf])
    return leaf


def expression_leaf(expression: str, allowed: Allowed, pointer: str = "") -> Leaf:
    """A bare expression, checked now; its code is written when its module is bound."""
    source = "{{ " + expression + " }}"
    inspect_template(source, allowed)
    node = parse(source).body[0].nodes[0]  # type: ignore[attr-defined]
    return Leaf("expression", node, pointer, names=_reads(parse(source)))


@dataclass(frozen=True)
class LeafProblem:
    """A TemplateError at a pointer inside a compiled tree (collected, not raised)."""

    pointer: str
    problem: TemplateError


#: Called with the path (keys and indexes from the tree's root) and source of each template leaf.
LeafHook = Callable[[tuple[str | int, ...], str], None]


def compile_tree(
    node: Any,
    allowed: Allowed,
    problems: list[LeafProblem],
    pointer: str = "",
    *,
    on_leaf: LeafHook | None = None,
) -> Renderer:
    """Compile a YAML tree whose string leaves are templates into a function of its own.

    Every bad leaf is appended to ``problems`` (so all are reported at once), and
    every template leaf is shown to ``on_leaf``. Rendering omits mapping members
    that come out null, so optional fields simply disappear from the request
    instead of being sent as empty strings.
    """
    leaf = tree_leaf(node, allowed, problems, pointer, on_leaf=on_leaf)
    bind([leaf])
    return leaf


def tree_leaf(
    node: Any,
    allowed: Allowed,
    problems: list[LeafProblem],
    pointer: str = "",
    *,
    on_leaf: LeafHook | None = None,
) -> Leaf:
    """A YAML tree of templates, each leaf checked now (a bad one is left out, as null, and
    its problem appended); its code is written when its module is bound."""
    names: set[str] = set()
    tree = _checked_tree(node, allowed, problems, pointer, on_leaf, (), names)
    return Leaf("tree", tree, pointer, names=frozenset(names))


def _checked_tree(
    node: Any,
    allowed: Allowed,
    problems: list[LeafProblem],
    pointer: str,
    on_leaf: LeafHook | None,
    path: tuple[str | int, ...],
    names: set[str],
) -> Any:
    if isinstance(node, dict):
        return {
            key: _checked_tree(
                value, allowed, problems, f"{pointer}/{escape_pointer(key)}", on_leaf, (*path, key), names
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            _checked_tree(value, allowed, problems, f"{pointer}/{index}", on_leaf, (*path, index), names)
            for index, value in enumerate(node)
        ]
    if isinstance(node, str) and has_template(node):
        try:
            inspect_template(node, allowed)
        except TemplateError as problem:
            problems.append(LeafProblem(pointer, problem))
            return None
        if on_leaf is not None:
            on_leaf(path, node)
        names |= _reads(parse(node))
        return node
    return node


def _reads(tree: nodes.Template) -> frozenset[str]:
    """The names a template reads from its context (not the ones it sets itself)."""
    return frozenset(name.name for name in tree.find_all(nodes.Name) if name.ctx == "load")

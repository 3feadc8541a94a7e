"""The compiler for template trees, on the one sandboxed environment.

Every template in every preset is compiled here once, at load time. A leaf that
is exactly ``{{ expression }}`` is compiled with ``compile_expression`` so it keeps
its native type (a number stays a number, ``"478"`` stays a string); any other
string with Jinja in it renders to text; a string without Jinja is a constant.
Values from events only ever reach templates as data, never as template source.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import TemplateAssertionError

from ..errors import LeafRenderError, TemplateError
from ..jsonpointer import escape_pointer
from . import limits
from .fastexpr import Unsupported, compile_node, compile_output
from .filters import to_json
from .sandbox import ENVIRONMENT
from .static import check_constants, check_statements

__all__ = [
    "REDACTED",
    "Allowed",
    "LeafHook",
    "LeafProblem",
    "Renderer",
    "compile_expression",
    "compile_tree",
    "did_you_mean",
    "inspect_template",
    "parse",
    "passes_through",
    "plain_templates",
    "single_expression",
    "to_json",
]

Renderer = Callable[[Mapping[str, Any]], Any]
#: Each top-level name a template may use, with the attributes it has (None: any).
Allowed = Mapping[str, Iterable[str] | None]

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}\s*$", re.DOTALL)

#: What a review (a golden, ``relay render``, a dry run) shows in place of a secret.
REDACTED = "<redacted>"


def single_expression(source: str) -> str | None:
    """The expression of a leaf that is exactly ``{{ expression }}`` (it keeps its type), else None."""
    single = _SINGLE_EXPRESSION.match(source)
    return single.group("expr").strip() if single else None


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
    names = [node for node in everything if isinstance(node, nodes.Name)]
    assigned = {n.name for n in names if n.ctx in ("store", "param")}
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


@lru_cache(maxsize=4096)
def _parse_cached(source: str) -> nodes.Template:
    return ENVIRONMENT.parse(source)


def parse(source: str) -> nodes.Template:
    """The template's AST, parsed once per distinct source (trees are only read, never changed)."""
    try:
        return _parse_cached(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Jinja syntax error: {exc.message}", line=exc.lineno or 1) from None
    except RecursionError:
        raise TemplateError("template limit: the template is nested too deeply") from None


def _jinja_compiled(build: Callable[[], Any]) -> Any:
    """Jinja's own compilation (the plain path); its late assertion errors become TemplateErrors."""
    try:
        return build()
    except TemplateAssertionError as exc:
        raise TemplateError(exc.message or str(exc), line=exc.lineno or 1) from None
    except RecursionError:
        raise TemplateError("template limit: the template is nested too deeply") from None


def _declare_hint(section: str, name: str, declared: list[str]) -> str:
    guess = did_you_mean(name, declared)
    where = "`settings:`" if section == "settings" else f"the preset's `{section}`"
    return f"{guess + ' Or' if guess else 'Or'} declare '{name}' under {where}"


#: Compile templates to closures (fastexpr) where possible; False keeps Jinja's own
#: compiled code everywhere. Both give identical results (test_fast_path.py).
FAST_PATH = os.environ.get("RELAY_PLAIN_TEMPLATES", "") != "1"


@contextmanager
def plain_templates() -> Iterator[None]:
    """Compile with Jinja's own code only, for as long as the block runs (tests, benchmarks)."""
    global FAST_PATH  # noqa: PLW0603 - a process-wide compile mode, switched only by tests and the bench
    previous, FAST_PATH = FAST_PATH, False
    try:
        yield
    finally:
        FAST_PATH = previous


def compile_expression(expression: str, allowed: Allowed) -> Renderer:
    """Compile a bare Jinja expression into ``context -> native value``."""
    source = "{{ " + expression + " }}"
    inspect_template(source, allowed)
    node = parse(source).body[0].nodes[0]  # type: ignore[attr-defined]
    compiled: Callable[..., Any] | None = None
    fast: Renderer | None = None
    if FAST_PATH:
        try:
            fast = compile_node(ENVIRONMENT, node)
        except Unsupported:
            fast = None
    if fast is None:
        compiled = _jinja_compiled(lambda: ENVIRONMENT.compile_expression(expression, undefined_to_none=False))
    # Strings are bounded where they are made; a list or mapping a template builds can hold
    # the same long value many times over, so its printed size is checked. A value passed
    # through as read (``traits``, ``event.properties``) is as big as its input, no bigger.
    checked = passes_through(node) is None

    def evaluate(context: Mapping[str, Any]) -> Any:
        value = fast(context) if fast is not None else compiled(**context)  # type: ignore[misc]
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        if checked and type(value) in _CONTAINERS:
            limits.check_text(value)
        return value

    return evaluate


_CONTAINERS = frozenset({list, dict, tuple})


#: Filters whose result holds nothing but what their arguments held (a part, a selection,
#: an order, a union): a value made by them is no bigger than what it was made from.
_SUBSET_FILTERS = frozenset(
    {"compact", "d", "default", "dictsort", "first", "last", "max", "merge", "min", "reject", "rejectattr"}
    | {"select", "selectattr", "sort", "unique"}
)


def passes_through(node: nodes.Node) -> set[str] | None:
    """The names an expression returns a value of as read, not built: ``name``,
    ``name.attr``, ``name['key']``, a constant, a choice between those (``a or b``,
    ``a if test else b``), or a part of them (``a | compact``, ``a | merge(b)``).
    None when the expression builds its value."""
    if isinstance(node, nodes.Filter) and node.name in _SUBSET_FILTERS and node.node is not None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        parts = [node.node, *node.args, *(keyword.value for keyword in node.kwargs)]
        found_all: set[str] = set()
        for part in parts:
            found = passes_through(part)
            if found is None:
                return None
            found_all |= found
        return found_all
    if isinstance(node, (nodes.Or, nodes.And, nodes.CondExpr)):
        choices = [node.left, node.right] if isinstance(node, (nodes.Or, nodes.And)) else [node.expr1, node.expr2]
        names: set[str] = set()
        for choice in choices:
            if choice is not None:
                found = passes_through(choice)
                if found is None:
                    return None
                names |= found
        return names
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            return None
        node = node.node
    if isinstance(node, nodes.Name):
        return {node.name}
    return set() if isinstance(node, nodes.Const) else None


def _compile_string(source: str, allowed: Allowed) -> Renderer:
    if "{{" not in source and "{%" not in source and "{#" not in source:
        return _constant(source)
    expression = single_expression(source)
    if expression is not None:
        return compile_expression(expression, allowed)
    inspect_template(source, allowed)
    if FAST_PATH:
        try:
            return compile_output(ENVIRONMENT, parse(source))
        except Unsupported:
            pass
    template = _jinja_compiled(lambda: ENVIRONMENT.from_string(source))
    return template.render  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LeafProblem:
    """A TemplateError at a pointer inside a compiled tree (collected, not raised)."""

    pointer: str
    problem: TemplateError


def _constant(value: Any) -> Renderer:
    return lambda _context: value


#: Called with the path (keys and indexes from the tree's root) and source of each template leaf.
LeafHook = Callable[[tuple[str | int, ...], str], None]


def compile_tree(
    node: Any,
    allowed: Allowed,
    problems: list[LeafProblem],
    pointer: str = "",
    *,
    on_leaf: LeafHook | None = None,
    path: tuple[str | int, ...] = (),
) -> Renderer:
    """Compile a YAML tree whose string leaves are templates.

    Every bad leaf is appended to ``problems`` (so all are reported at once), and
    every template leaf is shown to ``on_leaf``. Rendering omits mapping members
    that come out null, so optional fields simply disappear from the request
    instead of being sent as empty strings.
    """
    if isinstance(node, dict):
        children = [
            (
                key,
                compile_tree(
                    value, allowed, problems, f"{pointer}/{escape_pointer(key)}", on_leaf=on_leaf, path=(*path, key)
                ),
            )
            for key, value in node.items()
        ]

        def render_mapping(context: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, child in children:
                value = child(context)
                if value is not None:
                    out[key] = value
            return out

        return render_mapping
    if isinstance(node, list):
        items = [
            compile_tree(value, allowed, problems, f"{pointer}/{index}", on_leaf=on_leaf, path=(*path, index))
            for index, value in enumerate(node)
        ]
        return lambda context: [item(context) for item in items]
    if isinstance(node, str):
        try:
            leaf = _compile_string(node, allowed)
        except TemplateError as problem:
            problems.append(LeafProblem(pointer, problem))
            return _constant(None)
        if "{" not in node:
            return leaf
        if on_leaf is not None:
            on_leaf(path, node)
        guarded = _guard(leaf, pointer)
        return _per_settings(guarded) if FAST_PATH and _settings_only(node) else guarded
    return _constant(node)


_SETTINGS_SCOPE = frozenset({"settings", "constants"})


@lru_cache(maxsize=4096)
def _settings_only(source: str) -> bool:
    """True when a template reads nothing but settings and constants: fixed for a run."""
    names = meta.find_undeclared_variables(parse(source))
    return bool(names) and names <= _SETTINGS_SCOPE


def _per_settings(leaf: Renderer) -> Renderer:
    """Render once per settings object (a run has one), not once per event: URL prefixes,
    credentials and list IDs stop costing anything per event."""
    memo: tuple[Any, Any] = (None, None)

    def render(context: Mapping[str, Any]) -> Any:
        nonlocal memo
        settings = context["settings"]
        owner, value = memo
        if owner is not settings:
            value = leaf(context)
            memo = (settings, value)  # one tuple assignment: safe across worker threads
        return value

    return render


def _guard(leaf: Renderer, pointer: str) -> Renderer:
    def guarded(context: Mapping[str, Any]) -> Any:
        try:
            return leaf(context)
        except LeafRenderError:
            raise
        except Exception as exc:  # any template failure; the pointer tells where
            raise LeafRenderError(pointer, exc) from exc

    return guarded

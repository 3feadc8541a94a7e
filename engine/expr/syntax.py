"""Reading templates: Jinja's parser (each distinct source parsed once) and what can be
told from a syntax tree alone."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from ..errors import TemplateError
from .sandbox import ENVIRONMENT

__all__ = [
    "constant_dict",
    "is_number",
    "may_be_undefined",
    "names_read",
    "parse",
    "passes_through",
    "plain_filter",
    "single_expression",
]

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}\s*$", re.DOTALL)


def single_expression(source: str) -> str | None:
    """The expression of a leaf that is exactly ``{{ expression }}`` (it keeps its type), else None."""
    single = _SINGLE_EXPRESSION.match(source)
    return single.group("expr").strip() if single else None


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
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and node.node.attr == "get":
        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        found_get: set[str] = set()  # a mapping's value, or the default given
        for part in (node.node.node, *node.args[1:]):
            inner = passes_through(part)
            if inner is None:
                return None
            found_get |= inner
        return found_get
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            return None
        node = node.node
    if isinstance(node, nodes.Name):
        return {node.name}
    return set() if isinstance(node, nodes.Const) or _constant_literal(node) else None


def _constant_literal(node: nodes.Node) -> bool:
    """A list, tuple or mapping written out of constants: as big as its source, no bigger."""
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return all(isinstance(item, nodes.Const) for item in node.items)
    if isinstance(node, nodes.Dict):
        return all(isinstance(p.key, nodes.Const) and isinstance(p.value, nodes.Const) for p in node.items)
    return False


#: Filters that may give an undefined value (an empty sequence's first item...).
_UNDEFINED_FILTERS = frozenset({"first", "last", "min", "max", "default", "d"})


def names_read(node: nodes.Node, out: dict[int, frozenset[str]]) -> frozenset[str]:
    """The names ``node`` reads, recorded for it and each node below it in ``out`` (by id)."""
    found: set[str] = set()
    if isinstance(node, nodes.Name) and node.ctx == "load":
        found.add(node.name)
    for child in node.iter_child_nodes():
        found |= names_read(child, out)
    names = frozenset(found)
    out[id(node)] = names
    return names


def may_be_undefined(node: nodes.Node) -> bool:
    """Whether an expression can give an undefined value (which fails when it is the whole
    expression), rather than a value or an error."""
    if isinstance(node, nodes.Call):  # a mapping's get gives data (null when missing), never undefined
        return not (isinstance(node.node, nodes.Getattr) and node.node.attr == "get")
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return True
    if isinstance(node, nodes.Filter):
        return node.name in _UNDEFINED_FILTERS
    if isinstance(node, nodes.CondExpr):
        return node.expr2 is None or may_be_undefined(node.expr1) or may_be_undefined(node.expr2)
    if isinstance(node, (nodes.And, nodes.Or)):
        return may_be_undefined(node.left) or may_be_undefined(node.right)
    return isinstance(node, nodes.Name)


def constant_dict(node: nodes.Node) -> dict[Any, Any] | None:
    """A mapping literal of constants (``{'a': 1}``), as a dict; else None."""
    if not isinstance(node, nodes.Dict):
        return None
    out = {}
    for pair in node.items:
        if not isinstance(pair.key, nodes.Const) or not isinstance(pair.value, nodes.Const):
            return None
        try:
            out[pair.key.value] = pair.value.value
        except TypeError:  # an unhashable key fails when it runs, as in Jinja
            return None
    return out


#: Filters that, given no arguments, always give a number (Jinja's own: ``tests/compliance`` holds them).
_NUMBER_FILTERS = frozenset({"int", "float", "length", "count"})


def plain_filter(node: nodes.Filter) -> bool:
    """Whether a filter is given no arguments."""
    return not node.args and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None


def is_number(node: nodes.Node) -> bool:
    """Whether an expression always gives a number or a boolean (whose text is short), or fails."""
    if isinstance(node, nodes.Const):
        return type(node.value) in (int, float, bool)
    if isinstance(node, nodes.Filter):
        return node.name in _NUMBER_FILTERS and plain_filter(node)
    return isinstance(node, (nodes.Compare, nodes.Not))

"""Shared by the compile modules: compile one piece, or record a located error and go on.

Every compile step reports through one Builder, so a preset's problems are all
collected (each at its ``file:line:col`` and JSON pointer) and raised together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import Location, PresetError, TemplateError
from ..expr.paths import Search, compile_path
from ..expr.templates import Allowed, Leaf, LeafHook, LeafProblem, expression_leaf, tree_leaf
from .flow import Flow
from .source import SourceDoc

__all__ = ["Builder", "leaf_names", "leaves"]


class Builder:
    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.errors: list[PresetError] = []
        #: Set once the settings are read: which values derive from secrets, how big requests get.
        self.flow = Flow({}, ())
        #: Every template and expression of the preset, checked; the program compiles them all at once.
        self.leaves: list[Leaf] = []

    def error(self, pointer: str, message: str, *, key: bool = False, hint: str | None = None) -> None:
        self.errors.append(self.doc.error(pointer, message, key=key, hint=hint))

    def template_error(self, pointer: str, problem: TemplateError) -> None:
        location = self.doc.locate(pointer)
        if problem.line > 1:  # a block scalar: Jinja counts lines from its first line
            location = Location(location.file, location.line + problem.line, location.col)
        self.errors.append(PresetError(problem.message, pointer=pointer, location=location, hint=problem.hint))

    def expression(self, source: str, allowed: Allowed, pointer: str) -> Leaf | None:
        """A bare Jinja expression (a ``when``), or None after recording why it does not compile."""
        try:
            leaf = expression_leaf(source, allowed, pointer)
        except TemplateError as problem:
            self.template_error(pointer, problem)
            return None
        self.leaves.append(leaf)
        return leaf

    def tree(self, node: Any, allowed: Allowed, pointer: str, *, on_leaf: LeafHook | None = None) -> Leaf:
        """A YAML tree whose string leaves are templates; every bad leaf is recorded."""
        problems: list[LeafProblem] = []
        leaf = tree_leaf(node, allowed, problems, pointer, on_leaf=on_leaf)
        for problem in problems:
            self.template_error(problem.pointer, problem.problem)
        self.leaves.append(leaf)
        return leaf

    def path(self, expression: str, pointer: str) -> Search:
        """A JMESPath selector path; a bad one is recorded and searches nothing."""
        try:
            return compile_path(expression)
        except TemplateError as problem:
            self.error(pointer, problem.message, hint=problem.hint)
            return _nothing


def _nothing(_event: Any) -> None:
    return None


def leaf_names(node: Any, prefix: str = "") -> tuple[str, ...]:
    """Dotted paths of the leaves of a template tree (``vars.plan``), for docs and coverage."""
    if isinstance(node, dict):
        return tuple(leaf for key, value in node.items() for leaf in leaf_names(value, f"{prefix}{key}."))
    return (prefix.rstrip("."),) if prefix else ()


def leaves(node: Any) -> Iterator[str]:
    """The template strings of a YAML tree (its string leaves with ``{`` in them)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value)
    elif isinstance(node, str) and "{" in node:
        yield node

"""Selector paths: JMESPath expressions over the event, compiled once at load time.

A plain path (fields joined by dots: ``traits.email``, ``context."first-name"``) is
compiled to direct dict lookups, which give the same answer as ``jmespath.search``
several times faster (a preset's program writes them inline); any other expression is
jmespath's own. ``tests/compliance/paths.yaml`` holds the two to the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from ..errors import TemplateError

__all__ = ["Search", "compile_path", "plain_path"]

Search = Callable[[Any], Any]


def compile_path(expression: str) -> Search:
    """``event -> value`` for a JMESPath expression; a bad one raises TemplateError."""
    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as exc:
        position = getattr(exc, "lex_position", None)
        at = f" at character {position + 1}" if isinstance(position, int) else ""
        detail = getattr(exc, "msg", None) or str(exc).splitlines()[0]
        token_type, token_value = getattr(exc, "token_type", None), getattr(exc, "token_value", None)
        if token_type:
            detail += f" (unexpected {token_type} {token_value!r})"
        raise TemplateError(
            f"invalid JMESPath expression {expression!r}{at}: {detail}",
            hint='paths look like `traits.email` or `context.traits."first-name"`',
        ) from None
    parts = plain_path(expression)
    return _walker(parts) if parts is not None else compiled.search


def plain_path(expression: str) -> tuple[str, ...] | None:
    """The keys of a plain path (fields joined by dots), or None for any other expression."""
    try:
        tree = jmespath.compile(expression).parsed
    except JMESPathError:
        return None
    return _fields(tree)


def _fields(node: Any) -> tuple[str, ...] | None:
    if node.get("type") == "field":
        return (node["value"],)
    if node.get("type") == "subexpression":
        parts: tuple[str, ...] = ()
        for child in node["children"]:
            found = _fields(child)
            if found is None:
                return None
            parts += found
        return parts
    return None


def _walker(parts: tuple[str, ...]) -> Search:
    if len(parts) == 1:
        (key,) = parts
        return lambda event: event.get(key) if isinstance(event, dict) else None

    def walk(event: Any) -> Any:
        value = event
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return walk

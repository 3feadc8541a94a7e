"""Delivery-policy defaults, read from the one place they are written: the preset schema.

Editors show the schema's ``default`` keywords as documentation; the compiler
fills the same values in, and the docs generator prints the compiled policy, so
a default can never say one thing in the docs and do another at run time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .. import bundled
from .schema import load_json_schema

__all__ = ["delivery_default"]


@cache
def _delivery_properties() -> dict[str, Any]:
    schema = load_json_schema(bundled.preset_schema_path())
    properties: dict[str, Any] = schema["$defs"]["delivery"]["properties"]
    return properties


def delivery_default(*path: str) -> Any:
    """The schema's default for ``delivery.<path>``, e.g. ``delivery_default("backoff", "base")``."""
    node: Any = {"properties": _delivery_properties()}
    for part in path:
        node = node["properties"][part]
    return node["default"]

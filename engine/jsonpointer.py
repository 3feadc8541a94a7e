"""JSON pointers (RFC 6901): how relay names a place in a preset, a body or an event."""

from __future__ import annotations

__all__ = ["escape_pointer", "join_pointer"]


def escape_pointer(token: str | int) -> str:
    """One reference token: ``~`` and ``/`` escaped as ``~0`` and ``~1``."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(*tokens: str | int) -> str:
    """``join_pointer("a", 0, "b/c")`` is ``/a/0/b~1c``."""
    return "".join(f"/{escape_pointer(token)}" for token in tokens)

"""Reading the input: lines, their limits, and the events each holds.

A line holds one event, or, for a Segment batch envelope (``{"batch": [...]}``),
one per message. Hostile lines are failed with the limit's name, never allowed
to exhaust memory or the parser's stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ..runtime.decision import Plan
from .journal import event_key

__all__ = ["MAX_DEPTH", "MAX_LINE_BYTES", "Item", "events_of", "read_lines"]

#: An input line longer than this is failed (and dead-lettered) unread: a resource limit.
MAX_LINE_BYTES = 1 << 20
#: JSON nested deeper than this is failed: hostile input must not exhaust the parser's stack.
MAX_DEPTH = 64


def read_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for every line, blank ones included, lazily."""
    yield from enumerate(handle, 1)


def _parse(raw: bytes) -> tuple[Any, str | None]:
    if len(raw) > MAX_LINE_BYTES:
        return None, f"the line is {len(raw):,} bytes, over the limit of {MAX_LINE_BYTES:,} (MAX_LINE_BYTES)"
    try:
        event = json.loads(raw)
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); kept byte for byte"
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    except RecursionError:
        return None, f"JSON nested deeper than the limit of {MAX_DEPTH} levels (MAX_DEPTH)"
    if not isinstance(event, dict):
        return None, "an event must be a JSON object"
    # Counting brackets is C-fast; only an event with many of them is walked.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth(event) > MAX_DEPTH:
        return None, f"JSON nested deeper than the limit of {MAX_DEPTH} levels (MAX_DEPTH)"
    return event, None


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


@dataclass
class Item:
    """One event on its way through a run: where it came from, its identity, its plan."""

    line: int
    key: str
    raw: bytes
    event: Any
    plan: Plan | None = None
    order_key: str | None = None
    #: The event's place in a Segment batch envelope, for a line that held one.
    batch_index: int | None = None


def events_of(preset: str, line: int, key: str, raw: bytes) -> Iterator[tuple[Item, str | None]]:
    """The events of one line: the line itself, or each message of a Segment batch envelope.

    A batch's top-level ``context`` and ``integrations`` apply to each message that lacks
    them. A message keeps its own identity (key) and its own bytes, so it is journaled,
    dead-lettered and replayed on its own.
    """
    event, problem = _parse(raw)
    batch = event.get("batch") if problem is None else None
    if not isinstance(batch, list):
        yield Item(line, key, raw, event), problem
        return
    shared = {name: event[name] for name in ("context", "integrations") if name in event}
    for index, message in enumerate(batch):
        merged = {**shared, **message} if isinstance(message, dict) else message
        body = json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        item = Item(line, event_key(preset, line, body), body, merged, batch_index=index)
        yield item, None if isinstance(merged, dict) else f"message {index} of the batch is not a JSON object"

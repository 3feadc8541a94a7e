"""The collector's fast path: each event stored as the bytes it came as, plus the collector's members.

What is stored (see collector) is the event received with ``receivedAt`` (always), a
``messageId`` where it had none, and its batch's ``context`` and ``integrations`` where it
lacks them. The full path parses the body into objects with ``json`` and serialises every
event again, which was most of the collector's time. Here msgspec splits the body into each
event's bytes (``msgspec.Raw``: validated, never made into objects), decodes only the members
the collector reads, and the additions are spliced in before the event's closing brace.

The fast path only ever accepts. Whatever it cannot settle alone (anything to refuse, any
member to remove or replace) it leaves to the full path by answering None, so every refusal
and its message is the full path's, as before. What it accepts the full path would accept,
and any reader (``json.loads``) gets the same event from the bytes either would store:

- Grammar: msgspec validates the values it skips (strings and their escapes, numbers,
  literals, brackets) but not the UTF-8 inside strings, so the body is checked as UTF-8
  first. What msgspec refuses and ``json`` takes (``NaN``, a lone surrogate) is the full
  path's.
- Nesting: a part holding n brackets nests at most n levels deep, so counting brackets
  bounds the body's depth (a repeated member's first value included); a body not provably
  within ``MAX_DEPTH`` takes the full path.
- Members: msgspec reads member names unescaped and keeps the last of duplicates, as ``json``
  does. An event holding ``writeKey``, ``receivedAt`` or ``batch``, or a ``messageId`` that is
  not a non-empty string, takes the full path, so a spliced member is never a duplicate.
- Size: ``event_bytes`` is checked on the bytes stored, which keep the sender's spacing; an
  event over it takes the full path, which measures it without.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from ..delivery.input import MAX_DEPTH
from .queue import Message

__all__ = ["EVENT_TYPES", "FastBody", "accept_fast"]

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")

_ABSENT = msgspec.Raw(b"")
#: The whitespace JSON allows around a value (RFC 8259 section 2); nothing else.
_JSON_SPACE = b" \t\n\r"


class _Members(msgspec.Struct):
    """The members of an event the collector reads. The rest are skipped, not decoded, and only
    the presence of the ``Raw`` ones matters."""

    type: Any = msgspec.UNSET
    messageId: Any = msgspec.UNSET
    receivedAt: msgspec.Raw = _ABSENT
    writeKey: msgspec.Raw = _ABSENT
    batch: msgspec.Raw = _ABSENT
    context: msgspec.Raw = _ABSENT
    integrations: msgspec.Raw = _ABSENT


class _BatchBody(msgspec.Struct):
    """The members of a batch body the collector reads (any other is skipped, its brackets counted)."""

    batch: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    context: msgspec.Raw = _ABSENT
    integrations: msgspec.Raw = _ABSENT
    writeKey: msgspec.Raw = _ABSENT


_batch_body = msgspec.json.Decoder(_BatchBody)
_members = msgspec.json.Decoder(_Members)
#: A message as it is stored (NamedTuple's own constructor is Python; this one is C).
_message = functools.partial(tuple.__new__, Message)


@dataclass(frozen=True)
class FastBody:
    """A body the fast path accepted: its ``writeKey`` member, and each event's id and bytes to store."""

    write_key: Any
    events: list[Message]


def accept_fast(body: bytes, kind: str | None, received: str, event_bytes: int) -> FastBody | None:
    """``body`` accepted as a batch (``kind`` None) or as one event of type ``kind``, or None: ask the full path."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    write_key, shared = None, []
    try:
        if kind is None:
            top = _batch_body.decode(body)
            if top.batch is msgspec.UNSET:
                return None
            write_key = msgspec.json.decode(top.writeKey) if top.writeKey else None
            messages = [bytes(raw) for raw in top.batch]
            shared = [(name, b',"' + name.encode() + b'":' + bytes(raw)) for name in ("context", "integrations")
                      if (raw := getattr(top, name))]  # fmt: skip
        else:
            messages = [body.strip(_JSON_SPACE)]  # not bytes.strip(): it takes \x0b and \x0c too
    except ValueError:  # msgspec's errors are ValueErrors
        return None
    # Nesting: a part holding n brackets nests at most n deep. A batch is the body around its
    # events: each within MAX_DEPTH - 2, and all the rest (the body's brace, the batch's bracket,
    # every other member, repeated ones included) within MAX_DEPTH.
    total = _brackets(body)
    if kind is not None and total > MAX_DEPTH:
        return None
    tail = b',"receivedAt":"' + received.encode() + b'"}'
    events, inside = [], 0
    for message in messages:
        if kind is None:
            count = _brackets(message)
            if count > MAX_DEPTH - 2:
                return None
            inside += count
        try:
            event = _members.decode(message)
        except ValueError:  # not an object
            return None
        if event.writeKey or event.receivedAt or event.batch:
            return None
        additions = b""
        if kind is None:
            if event.type not in EVENT_TYPES:
                return None
        elif event.type is msgspec.UNSET:
            additions += b',"type":"' + kind.encode() + b'"'
        elif event.type != kind:
            return None
        for name, member in shared:
            if not getattr(event, name):
                additions += member
        message_id = event.messageId
        if message_id is msgspec.UNSET:
            message_id = f"relay-{uuid.uuid4()}"
            additions += b',"messageId":"' + message_id.encode() + b'"'
        elif not isinstance(message_id, str) or not message_id:
            return None
        additions += tail
        if event.type is msgspec.UNSET and not message[1:-1].strip():  # {}: no member before the additions
            additions = additions[1:]
        stored = message[:-1] + additions
        if len(stored) > event_bytes:
            return None
        events.append(_message((message_id, stored, None)))
    if kind is None and total - inside > MAX_DEPTH:
        return None
    return FastBody(write_key, events)


def _brackets(part: bytes) -> int:
    """An upper bound on how deeply ``part`` nests (every level opens a bracket)."""
    return part.count(b"{") + part.count(b"[")

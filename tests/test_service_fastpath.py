"""The collector's fast path against its full path: it only accepts what the full path accepts, and
every reader gets the same events from the bytes it stores.

The full path (``json``: parse, check, serialise again) is the reference; the fast path
(msgspec splitting the body into each event's bytes, members spliced in) must answer None
wherever the full path refuses, and otherwise store what parses to the full path's events.
Bodies are generated valid, then mutated byte by byte towards every kind of invalid.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.delivery.input import MAX_DEPTH
from relay.service.collector import EVENT_TYPES, full_events, parse_body
from relay.service.fastpath import accept_fast

RECEIVED = "2026-05-01T12:00:00.000Z"
KINDS = [None, "track", "identify"]

_text = st.text(max_size=12) | st.sampled_from(["é", "😀", "\u2028", "\x00", 'a"b\\c', "\ud800", "writeKey"])
_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | _text
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=10,
)
_member_names = st.sampled_from(
    ["type", "messageId", "receivedAt", "writeKey", "batch", "context", "integrations", "userId", "properties"]
)
_events = (
    st.dictionaries(
        _member_names, st.sampled_from([*EVENT_TYPES, "purchase", ""]) | st.text(max_size=6) | _values, max_size=6
    )
    | _values
)
_bodies = st.one_of(
    st.builds(
        lambda batch, extra: {"batch": batch, **extra},
        st.lists(_events, max_size=4),
        st.dictionaries(st.sampled_from(["context", "integrations", "writeKey", "sentAt"]), _values, max_size=3),
    ),
    _events,
)
_dumps = st.sampled_from(
    [
        json.dumps,
        lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")),
        lambda v: json.dumps(v, indent=2),
    ]
)
_insertions = st.sampled_from(
    [b"NaN", b"Infinity", b"1e400", b'"\\ud800"', b"\xff", b"\xed\xa0\x80", b"{", b"[", b"]", b"}", b",", b'"', b"\\",
     b" ", b"\x0c", b"\xef\xbb\xbf", b'"writeKey":1,', b'"receivedAt":1,', b'"\\u0074ype":"track",', b'"type":"alias",']
)  # fmt: skip


def full(body: bytes, kind: str | None, event_bytes: int) -> tuple[Any, list[tuple[str, Any]]] | None:
    """The full path's verdict: (the body's writeKey, each stored event's id and value), or None if refused."""
    try:
        payload = parse_body(body)
        events = full_events(payload, kind, RECEIVED, event_bytes)
    except Exception:  # a refusal
        return None
    return payload.get("writeKey"), [(m.message_id, json.loads(m.raw)) for m in events]


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: the types too (1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check(body: bytes, kind: str | None, event_bytes: int = 1_000_000) -> None:
    fast = accept_fast(body, kind, RECEIVED, event_bytes)
    if fast is None:
        return
    reference = full(body, kind, event_bytes)
    assert reference is not None, f"the fast path accepted what the full path refuses: {body!r}"
    write_key, events = reference
    assert same(fast.write_key, write_key)
    assert len(fast.events) == len(events)
    for (fast_id, fast_raw, _parsed), (full_id, full_event) in zip(fast.events, events, strict=True):
        assert len(fast_raw) <= event_bytes
        fast_event = json.loads(fast_raw)
        if full_id.startswith("relay-") and fast_id.startswith("relay-"):  # generated on each path
            full_event["messageId"] = fast_id
        else:
            assert fast_id == full_id
        assert fast_event["messageId"] == fast_id
        assert same(fast_event, full_event), (body, fast_raw)


@settings(max_examples=400, deadline=None)
@given(body=_bodies, dumps=_dumps, kind=st.sampled_from(KINDS))
def test_valid_bodies_store_what_the_full_path_stores(body: Any, dumps: Any, kind: str | None) -> None:
    try:
        raw = dumps(body).encode("utf-8", "surrogatepass")
    except ValueError:
        return
    check(raw, kind)


@settings(max_examples=600, deadline=None)
@given(body=_bodies, kind=st.sampled_from(KINDS), at=st.floats(0, 1), insertion=_insertions, cut=st.integers(0, 3))
@example(body={}, kind="track", at=0.0, insertion=b"\x0c", cut=0)  # form feed: not JSON whitespace
@example(body={}, kind=None, at=0.0, insertion=b"\x0b", cut=0)
def test_mutated_bodies_are_the_full_paths_to_refuse(
    body: Any, kind: str | None, at: float, insertion: bytes, cut: int
) -> None:
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    where = int(at * len(raw))
    check(raw[:where] + insertion + raw[where + cut :], kind)


@pytest.mark.parametrize(
    "body",
    [
        b'{"batch": [{"type": "track", "messageId": "m", "p": '
        + b"[" * (MAX_DEPTH - 3)
        + b"]" * (MAX_DEPTH - 3)
        + b"}]}",
        b'{"batch": [{"type": "track", "messageId": "m", "p": '
        + b"[" * (MAX_DEPTH - 2)
        + b"]" * (MAX_DEPTH - 2)
        + b"}]}",
        b'{"batch": [], "sentAt": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
        b'{"batch": [], "sentAt": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b', "sentAt": 1}',
        b'{"batch": [' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b'], "batch": []}',
        b'{"type": "track", "p": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b', "p": 1}',
        b'{"batch": [{"type": "track", "p": "' + b"[" * 100 + b'"}]}',
        b'{"batch": [{"type": "track", "messageId": "m", "x": "' + b"y" * 300 + b'"}]}',
        b'{"batch": [{"type": "track", "messageId": "m", "x": "' + b"y" * 300 + b'"}], "context": {"a": 1}}',
        b'{"batch": [{"type": "track", "messageId": "m"}], "context": {"a": 1}, "integrations": {"All": false}}',
        b'{"batch": [{"type": "page", "context": {"own": 1}}, {"type": "page"}], "context": {"shared": 1}}',
        b'{"batch": [{"type": "page", "integrations": null}], "integrations": {"All": false}}',
        b'{"batch": [{}, {"type":"page"}, { }]}',
        b'{"type": "track"}',
        b'{"type": "track", "messageId": ""}',
        b'  {"userId": "u"}  ',
        b'{"batch": [{"type": "track", "messageId": "m", "n": 123456789012345678901234567890}]}',
        b'{"batch": [{"type": "track", "messageId": "m", "n": 1e400}]}',
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_limits_at_their_edges(body: bytes, kind: str | None) -> None:
    for event_bytes in (100, 300, 400, 1_000_000):
        check(body, kind, event_bytes)


def test_the_common_batch_takes_the_fast_path_and_keeps_its_bytes() -> None:
    events = [{"type": "track", "messageId": f"m-{n}", "event": "Signed Up", "properties": {"n": n}} for n in range(3)]
    body = json.dumps({"batch": events, "context": {"ip": "203.0.113.9"}, "writeKey": "wk"}).encode()
    fast = accept_fast(body, None, RECEIVED, 32_000)
    assert fast is not None and fast.write_key == "wk"
    assert [m.message_id for m in fast.events] == ["m-0", "m-1", "m-2"]
    first = fast.events[0].raw
    assert first.startswith(json.dumps(events[0])[:-1].encode())  # the sender's bytes, then the additions
    assert json.loads(first) == {**events[0], "context": {"ip": "203.0.113.9"}, "receivedAt": RECEIVED}
    check(body, None)


@pytest.mark.parametrize("separators", [None, (",", ":")])
def test_generated_segment_batches_take_the_fast_path_and_store_what_the_full_path_would(
    separators: tuple[str, str] | None,
) -> None:
    from bench.events import generate

    events = list(generate(1_000, seed=3))
    for start in range(0, len(events), 100):
        body = json.dumps({"batch": events[start : start + 100], "sentAt": RECEIVED}, separators=separators).encode()
        assert accept_fast(body, None, RECEIVED, 32_000) is not None
        check(body, None, 32_000)

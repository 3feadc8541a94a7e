"""The collector: Segment's HTTP API, answering 200 only once the events are durably stored.

``POST /v1/batch``, ``/v1/track``, ``/v1/identify``, ``/v1/page``, ``/v1/screen``,
``/v1/group`` and ``/v1/alias``. The write key is the Basic-auth username (an
empty password) or ``writeKey`` in the body. Bodies may be gzipped.

A request is all or nothing: every event in it is stored, or none is and the
answer says why. Every answer is JSON (``{"success": false, "code", "message"}``
for errors, with ``limit`` naming a limit that was hit), so the SDKs, which read
``code`` and ``message``, report it. The stored event is the one received, plus
``receivedAt`` (the collector's clock, always) and a ``messageId`` where it had
none; a batch's ``context`` and ``integrations`` are copied into each message
that lacks them, and ``writeKey`` is never stored.

Two paths, one verdict: the fast path (fastpath.py) stores each event's own bytes with
the collector's members spliced in, and only ever accepts; everything else, every
refusal included, takes the full path (``parse_body`` and ``full_events``: ``json``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..delivery.input import MAX_DEPTH
from .config import ServiceConfig, Source
from .fastpath import EVENT_TYPES, accept_fast
from .limits import BodyError, nesting, read_body
from .logs import ServiceLog
from .metrics import Metrics
from .queue import Appended, Message

__all__ = ["EVENT_TYPES", "Collector", "Endpoint", "Sink", "error_response", "full_events", "parse_body"]


class Sink(Protocol):
    """Where accepted events go: the embedded queue or Kafka. ``store`` returns once they are durable."""

    async def store(self, source: str, messages: list[Message]) -> Appended: ...

    def problem(self) -> str | None: ...


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": "5"} if status in (429, 503) else None
    return JSONResponse({"success": False, "code": code, "message": message, **extra}, status, headers=headers)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message, **extra)
        self.code = code


class Collector:
    def __init__(self, config: ServiceConfig, sink: Sink, metrics: Metrics, log: ServiceLog) -> None:
        self.config = config
        self.sink = sink
        self.metrics = metrics
        self.log = log
        #: Set on SIGTERM: new requests get 503 while in-flight ones finish.
        self.accepting = True

    def endpoints(self) -> dict[str, Endpoint]:
        """Each route's ASGI app: ``/v1/batch`` and one per event type, all POST only."""
        found = {"/v1/batch": Endpoint(self, "/v1/batch", None)}
        for kind in EVENT_TYPES:
            found[f"/v1/{kind}"] = Endpoint(self, f"/v1/{kind}", kind)
        return found

    def routes(self) -> list[Route]:
        return [Route(path, endpoint, methods=["POST"]) for path, endpoint in self.endpoints().items()]

    def identify(self, write_key: str | None) -> Source | None:
        """The source with this write key, comparing every key in constant time."""
        if not write_key:
            return None
        found = None
        candidate = write_key.encode("utf-8", "surrogateescape")
        for source in self.config.sources:
            if hmac.compare_digest(candidate, source.write_key.encode("utf-8")):
                found = source
        return found

    async def handle(self, headers: Headers, chunks: AsyncIterator[bytes], kind: str | None) -> JSONResponse:
        if not self.accepting:
            raise _Refused(503, "shutting_down", "the collector is shutting down; send again shortly")
        limits = self.config.limits
        header_key = _basic_username(headers.get("authorization"))
        source = self.identify(header_key) if header_key is not None else None
        if header_key is not None and source is None:
            raise _Refused(401, "unauthorized", "unknown write key (the Basic-auth username)")
        limit, name = (limits.batch_bytes, "batch_bytes") if kind is None else (limits.event_bytes, "event_bytes")
        body = await read_body(
            chunks,
            content_length=headers.get("content-length"),
            content_encoding=headers.get("content-encoding"),
            limit=limit,
            limit_name=name,
            deadline=time.monotonic() + limits.read_timeout,
        )
        received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # Only a body the fast path accepts whole skips the full path: every refusal is the full path's.
        fast = accept_fast(body, kind, received, limits.event_bytes)
        payload = parse_body(body) if fast is None else {}
        if source is None:
            body_key = payload.get("writeKey") if fast is None else fast.write_key
            source = self.identify(body_key if isinstance(body_key, str) else None)
            if source is None:
                if body_key is None:
                    raise _Refused(401, "unauthorized", "no write key: send it as the Basic-auth username or writeKey")
                raise _Refused(401, "unauthorized", "unknown write key (writeKey in the body)")
        events = full_events(payload, kind, received, limits.event_bytes) if fast is None else fast.events
        try:
            stored = await self.sink.store(source.name, events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the queue could not make them durable: nothing was accepted
            self.log.warning("store_failed", source=source.name, events=len(events), error=str(exc))
            raise _Refused(503, "unavailable", "the events could not be stored; nothing was accepted, retry") from None
        self.metrics.received.labels(source.name).inc(stored.accepted)
        if stored.duplicates:
            self.metrics.duplicates.labels(source.name).inc(stored.duplicates)
        return JSONResponse({"success": True, "accepted": stored.accepted, "duplicates": stored.duplicates})


class Endpoint:
    """One collector route as a plain ASGI app: no Request object, the body read straight from ``receive``."""

    def __init__(self, collector: Collector, route: str, kind: str | None) -> None:
        self.collector, self.route, self.kind = collector, route, kind
        self.ack = collector.metrics.ack.labels(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        metrics = self.collector.metrics
        try:
            response = await self.collector.handle(Headers(scope=scope), _body_chunks(receive), self.kind)
        except _Refused as refused:
            response = refused.response
            metrics.rejected.labels(refused.code).inc()
        except BodyError as error:
            extra = {"limit": error.limit} if error.limit else {}
            response = error_response(error.status, error.code, error.message, **extra)
            metrics.rejected.labels(error.code).inc()
        self.ack.observe(time.monotonic() - started)
        await response(scope, receive, send)


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (what Starlette's ``Request.stream`` does, without the Request)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def full_events(payload: dict[str, Any], kind: str | None, received: str, event_bytes: int) -> list[Message]:
    """The full path: every event parsed, checked, completed and serialised again."""
    if kind is None:
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise _Refused(400, "bad_request", 'a batch body is {"batch": [events...]}')
        shared = {name: payload[name] for name in ("context", "integrations") if name in payload}
    else:
        messages, shared = [payload], {}
    events = []
    for index, message in enumerate(messages):
        where = f"batch[{index}]" if kind is None else "the event"
        if not isinstance(message, dict):
            raise _Refused(400, "bad_event", f"{where} is not a JSON object")
        event = {**shared, **message}
        event.pop("writeKey", None)
        if kind is not None:
            declared = event.setdefault("type", kind)
            if declared != kind:
                raise _Refused(400, "bad_event", f"{where} has type {declared!r}, posted to /v1/{kind}")
        if "type" not in event:
            raise _Refused(400, "missing_type", f"{where} has no type (one of: {', '.join(EVENT_TYPES)})")
        if event["type"] not in EVENT_TYPES:
            raise _Refused(400, "bad_event", f"{where} has an unknown type (one of: {', '.join(EVENT_TYPES)})")
        if isinstance(event.get("batch"), list):
            raise _Refused(400, "bad_event", f"{where} holds a batch of its own; send one level only")
        message_id = event.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            event["messageId"] = f"relay-{uuid.uuid4()}"
        event["receivedAt"] = received
        try:
            raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused(400, "bad_event", f"{where} holds text that is not valid Unicode") from None
        size = len(raw)
        if size > event_bytes:
            raise _Refused(
                400, "too_large",
                f"{where} is {size:,} bytes, over the limit of {event_bytes:,} (event_bytes)",
                limit="event_bytes",
            )  # fmt: skip
        events.append(Message(event["messageId"], raw, event))
    return events


def _basic_username(header: str | None) -> str | None:
    """The username of an HTTP Basic Authorization header (the write key), or None when absent."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return ""  # some other scheme: no usable key, refused as unknown
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise _Refused(400, "bad_json", "the body is empty; send a JSON object")
    try:
        payload = json.loads(body.decode("utf-8"))  # decoded first: json would guess UTF-16 from a BOM
    except UnicodeDecodeError as exc:
        raise _Refused(400, "bad_json", f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _Refused(
            400, "bad_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise _Refused(400, "bad_json", "the body is not valid JSON (nested too deep, or a number too long)") from None
    if not isinstance(payload, dict):
        raise _Refused(400, "bad_json", "the body must be a JSON object")
    # The delivery loop fails an event nested deeper than MAX_DEPTH: refuse it here instead.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and nesting(body, MAX_DEPTH) > MAX_DEPTH:
        raise _Refused(400, "too_deep", f"the JSON nests deeper than {MAX_DEPTH} levels (MAX_DEPTH)", limit="MAX_DEPTH")
    return payload

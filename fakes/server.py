"""A small threaded HTTP server that fake vendors plug into.

What every fake shares lives here: routing to a handler, a request log, a
configurable rate limit, fault injection (5xx, slow responses, dropped
connections) and admin endpoints under ``/_fake/`` so tests and the CLI can
inspect state. Vendor behaviour lives in one module per vendor.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeRequest", "FakeResponse", "FakeServer", "FakeVendor", "Fault", "RateLimit"]


@dataclass
class FakeRequest:
    method: str
    path: str  # URL-decoded path
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def basic_credentials(self) -> tuple[str, str] | None:
        """(user, password) from an HTTP Basic Authorization header, or None."""
        header = self.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def form(self) -> dict[str, str]:
        """Fields of an urlencoded or multipart/form-data body."""
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            from email.parser import BytesParser
            from email.policy import HTTP

            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body)
            out = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    out[name] = payload.decode("utf-8")
            return out
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def json(cls, status: int, payload: Any, *, reason: str | None = None, **headers: str) -> FakeResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}, reason)


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests.

    kind: ``status`` (answer ``status`` with a vendor-neutral body), ``delay``
    (sleep ``seconds`` first, then answer normally), ``drop`` (close the
    connection without answering).
    """

    kind: str
    status: int = 503
    seconds: float = 0.0
    times: int = 1
    path_contains: str = ""
    #: Only requests whose body holds this text (e.g. one contact's address).
    body_contains: str = ""
    #: For ``status``: the answer's body (JSON text, say, as the vendor words a refusal);
    #: empty gives a vendor-neutral HTML page.
    body: str = ""


@dataclass
class RateLimit:
    """At most ``limit`` requests per ``window`` seconds per credential."""

    limit: int
    window: float = 1.0


class FakeVendor:
    """Base class of a fake vendor: override ``handle`` and ``snapshot``."""

    name = "fake"

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def handle(self, request: FakeRequest) -> FakeResponse | None:  # pragma: no cover - abstract
        """The answer; None drops the connection (what some vendors do past a size limit)."""
        raise NotImplementedError

    def credential(self, request: FakeRequest) -> str:
        return request.headers.get("authorization", "")

    def rate_limited(self, request: FakeRequest, limit: RateLimit) -> FakeResponse:  # pragma: no cover
        return FakeResponse(429, b"Too Many Requests", {"Content-Type": "text/plain"})

    def snapshot(self) -> dict[str, Any]:  # pragma: no cover - abstract
        return {}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:  # pragma: no cover - abstract
        """A human view of the state: title, column names, rows."""
        return self.name, [], []

    def configure(self, settings: dict[str, Any]) -> None:
        """Seed state (lists, keys, properties) from a mapping."""

    def accept(self, settings: Mapping[str, Any]) -> None:
        """Get ready for a preset configured with ``settings`` (resolved values): take its
        credentials as the right ones and create what they name (a list, an audience)."""

    def seed(self, method: str, path: str, answer: Any, status: int = 200) -> None:
        """Make ``method path`` (as sent) find ``answer``: the state a ``read`` request sees."""
        raise NotImplementedError(f"the {self.name} fake cannot be seeded with {method} {path}")


class _Listener(ThreadingHTTPServer):
    #: The default backlog of 5 resets connections when a client opens 32 at once, as
    #: `relay send --concurrency 32` does; a real API host never does that.
    request_queue_size = 256


class FakeServer:
    """Run a FakeVendor on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        vendor: FakeVendor,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        latency: tuple[float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.vendor = vendor
        self.rate_limit = rate_limit
        #: (min, max) seconds of random delay per request: shuffles the timing of concurrent requests.
        self.latency = latency
        self._random = random.Random(seed)
        self.faults: deque[Fault] = deque()
        self.log: list[dict[str, Any]] = []
        #: (method, path) of every request as it arrives, before it is answered (the log has
        #: it once answered): lets a test act while a request is in flight.
        self.arrivals: list[tuple[str, str]] = []
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._httpd = _Listener(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self.serve_forever, name=f"fake-{self.vendor.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)  # a fast shutdown keeps tests quick

    # -- control --------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def requests(self, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.log if (method is None or r["method"] == method) and contains in r["path"]]

    def state(self) -> dict[str, Any]:
        with self.vendor.lock:
            return self.vendor.snapshot()

    def _take_fault(self, request: FakeRequest) -> Fault | None:
        with self._lock:
            for fault in list(self.faults):
                if fault.path_contains in request.path and fault.body_contains.encode() in request.body:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _over_limit(self, request: FakeRequest) -> bool:
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(self.vendor.credential(request), deque())
            while hits and now - hits[0] >= self.rate_limit.window:
                hits.popleft()
            if len(hits) >= self.rate_limit.limit:
                return True
            hits.append(now)
            return False

    def dispatch(self, request: FakeRequest) -> FakeResponse | None:
        """Answer one request; None means: drop the connection."""
        if request.path.startswith("/_fake/"):
            return self._admin(request)
        with self._lock:
            self.arrivals.append((request.method, request.path))
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": request.headers,
            "body": request.body.decode("utf-8", "replace"),
        }
        if self.latency is not None:
            with self._lock:
                pause = self._random.uniform(*self.latency)
            time.sleep(pause)
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "drop":
            entry["status"] = "dropped"
            self._record(entry)
            return None
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            json_body = fault.body.lstrip().startswith(("{", "["))
            response = FakeResponse(
                fault.status,
                fault.body.encode() if fault.body else b"<html><body>Service Unavailable</body></html>",
                {"Content-Type": "application/json" if json_body else "text/html"},
            )
        elif self._over_limit(request):
            assert self.rate_limit is not None
            response = self.vendor.rate_limited(request, self.rate_limit)
        else:
            with self.vendor.lock:
                answer = self.vendor.handle(request)
            if answer is None:
                entry["status"] = "dropped"
                self._record(entry)
                return None
            response = answer
        entry["status"] = response.status
        self._record(entry)
        return response

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(entry)

    def _admin(self, request: FakeRequest) -> FakeResponse:
        action = request.path.removeprefix("/_fake/")
        if action == "state":
            return FakeResponse.json(200, self.state())
        if action == "log":
            return FakeResponse.json(200, self.requests())
        if action == "faults" and request.method == "POST":
            self.inject(Fault(**request.json()))
            return FakeResponse.json(200, {"queued": len(self.faults)})
        if action == "configure" and request.method == "POST":
            with self.vendor.lock:
                self.vendor.configure(request.json())
            return FakeResponse.json(200, {"ok": True})
        return FakeResponse.json(404, {"message": f"unknown admin action {action!r}"})


def _handler_for(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the request log is the record
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = FakeRequest(
                method=self.command,
                path=unquote(split.path),
                raw_path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = server.dispatch(request)
            except Exception as exc:  # a fake bug must show as a 500, not a hung client
                response = FakeResponse.json(500, {"message": f"fake server error: {exc!r}"})
            if response is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                self.send_response(response.status, response.reason)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its read timeout)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler

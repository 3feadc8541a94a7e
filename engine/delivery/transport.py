"""The thin transport seam: send one Request, get one Response. Nothing else.

``HTTPTransport`` is the real one: keep-alive HTTP/1.1 with connect/read timeouts.
``RedirectTransport`` wraps another to send requests for a URL prefix elsewhere (how the demo and
tests point unmodified presets at local fakes); ``MockTransport`` answers from a function.
Retries, backoff and classification live in ``deliver.py``, not here.

Why not ``requests`` or urllib3's pool: relay sends one small request per event, so the cost per
request is the cost. ``requests`` (session merging, hooks, cookie jar) spends about 370 µs of CPU
per request more than a plain keep-alive ``http.client`` loop; urllib3's ``urlopen`` about 90 µs
(its ``Timeout``/``Retry`` objects and response wrapper). ``HTTPTransport`` keeps what those
libraries are for and drops the rest:

- connections are urllib3's (``urllib3.connection``): connect timeout, ``TCP_NODELAY``, and TLS
  with certificate and host name verification against certifi's roots (as ``requests`` did);
- each request goes out in one write, head and body together (``wire.encode_request``);
- the answer is parsed by llhttp through ``httptools`` (``wire.read_answer``), read in full up to
  ``MAX_ANSWER_BYTES``, gzip/deflate decoded;
- idle connections wait in a small pool per origin (scheme, host, port), up to ``pool_size``
  of them; one the server has closed meanwhile is noticed before reuse and replaced.

Never: retries (relay retries, with backoff and its rate limit), redirects (a 3xx is an answer,
classified like any other), proxies or credentials from the environment (``HTTP(S)_PROXY``,
``.netrc``: relay connects directly, as it always has), cookies. Credentials in the URL
(``https://user:secret@host/``) become Basic auth, as with ``requests``; no error names the URL.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
import weakref
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import httptools

from ..errors import TransportError
from ..runtime.decision import Request
from .wire import MAX_ANSWER_BYTES, AnswerTooLarge, decoded, encode_request, read_answer, split_url, unsendable

if TYPE_CHECKING:
    import ssl

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ORIGINS",
    "HTTPTransport",
    "MockTransport",
    "RedirectTransport",
    "Response",
    "Transport",
    "redirect_pattern",
    "user_agent",
]

#: Origins whose idle connections are kept; past it the oldest origin's are closed.
MAX_ORIGINS = 64


@cache
def user_agent() -> str:
    """``relay/<version>``: how relay's requests name themselves (a preset's own header wins)."""
    try:
        return f"relay/{version('relay')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "relay"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        return str(self.headers.get("Content-Type") or self.headers.get("content-type") or "")


class Transport(Protocol):
    def send(self, request: Request) -> Response:
        """One attempt: an HTTP answer of any status, or TransportError when there is none."""
        ...

    def close(self) -> None: ...


@dataclass
class _Origin:
    """Where requests for one ``scheme://host:port`` go, and its idle connections."""

    secure: bool
    host: str
    port: int
    #: ``(lowercased name, "Name: value\r\n")`` lines each request gets unless it has its own.
    implied: tuple[tuple[str, str], ...]
    idle: list[Any] = field(default_factory=list)


@dataclass
class HTTPTransport:
    """Keep-alive pooled HTTP/1.1; see the module docstring. Safe to share between threads."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Idle connections kept per origin: the number of requests relay sends at once.
    pool_size: int = 10
    _origins: dict[str, _Origin] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    _context: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Idle sockets are closed when the transport is, or when it is garbage (as urllib3's pools do).
        self._close_idle = weakref.finalize(self, _close_idle, self._origins, self._lock)

    def send(self, request: Request) -> Response:
        origin_url, target = split_url(request.url)
        origin = self._origins.get(origin_url) or self._origin(origin_url)
        data = encode_request(request.method, target, request.headers, request.content, origin.implied)
        connection = self._connection(origin)
        try:
            connection.sock.sendall(data)
            status, headers, content, reusable = read_answer(connection.sock, request.method == "HEAD")
            if content:
                encoding = headers.get("Content-Encoding") or headers.get("content-encoding")
                if encoding:
                    content = decoded(content, encoding)
        except TimeoutError as exc:
            connection.close()
            raise TransportError("timeout", _describe(exc)) from None
        except (OSError, httptools.HttpParserError, AnswerTooLarge, zlib.error) as exc:
            connection.close()
            raise TransportError("connection_error", _describe(exc)) from None
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._release(origin, connection)
        else:
            connection.close()
        return Response(status, headers, content)

    def close(self) -> None:
        self._closed = True
        self._close_idle()

    def _origin(self, origin_url: str) -> _Origin:
        origin = self._new_origin(origin_url)
        with self._lock:
            if origin_url not in self._origins and len(self._origins) >= MAX_ORIGINS:
                _close_connections(self._origins.pop(next(iter(self._origins))))
            return self._origins.setdefault(origin_url, origin)

    def _new_origin(self, origin_url: str) -> _Origin:
        parts = urlsplit(origin_url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise unsendable(f"the URL's scheme {parts.scheme!r} is not http or https")
        secure = scheme == "https"
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError:
            raise unsendable("the URL's port is not a number") from None
        host = parts.hostname
        if not host:
            raise unsendable("the URL has no host")
        netloc = parts.netloc.rpartition("@")[2]
        try:
            host_header = netloc.encode("ascii").decode()
        except UnicodeEncodeError:
            host_header = netloc.encode("idna").decode()
        if parts.port == (443 if secure else 80):  # the default port is not named, as requests did
            host_header = host_header.rsplit(":", 1)[0]
        implied = [("host", f"Host: {host_header}\r\n")]
        if parts.username is not None:  # https://user:password@host/ means Basic auth, as requests did
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            implied.append(("authorization", f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"))
        defaults = {"User-Agent": user_agent(), "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
        implied += [(name.lower(), f"{name}: {value}\r\n") for name, value in defaults.items()]
        return _Origin(secure, host, port, tuple(implied))

    def _connection(self, origin: _Origin) -> Any:
        """An open connection to ``origin``: an idle one the server has not closed, else a new one."""
        idle = origin.idle
        while idle:
            try:
                connection = idle.pop()  # atomic: two threads never get the same one
            except IndexError:  # another thread took the last one
                break
            if connection.is_connected:
                return connection
            connection.close()
        return self._connect(origin)

    def _connect(self, origin: _Origin) -> Any:
        from urllib3.connection import HTTPConnection, HTTPSConnection  # `relay validate` never needs it
        from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

        connection: HTTPConnection
        if origin.secure:
            connection = HTTPSConnection(
                origin.host, origin.port, timeout=self.connect_timeout, ssl_context=self._tls()
            )
        else:
            connection = HTTPConnection(origin.host, origin.port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except (ConnectTimeoutError, TimeoutError) as exc:
            connection.close()
            # urllib3's NewConnectionError (refused, unreachable) is a ConnectTimeoutError too.
            kind = "connection_error" if isinstance(exc, NewConnectionError) else "timeout"
            raise TransportError(kind, _describe(exc)) from None
        except (HTTPError, OSError, ValueError) as exc:
            connection.close()
            raise TransportError("connection_error", _describe(exc)) from None
        assert connection.sock is not None
        connection.sock.settimeout(self.read_timeout)
        return connection

    def _tls(self) -> ssl.SSLContext:
        """One verifying TLS context for every connection (loading the roots takes milliseconds)."""
        with self._lock:
            if self._context is None:
                import ssl

                import certifi
                from urllib3.util.ssl_ import create_urllib3_context

                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                context.load_verify_locations(certifi.where())
                self._context = context
            return self._context

    def _release(self, origin: _Origin, connection: Any) -> None:
        if self._closed or len(origin.idle) >= max(self.pool_size, 1):
            connection.close()
        else:
            origin.idle.append(connection)


def _close_idle(origins: dict[str, _Origin], lock: threading.Lock) -> None:
    with lock:
        closing = list(origins.values())
        origins.clear()
    for origin in closing:
        _close_connections(origin)


def _close_connections(origin: _Origin) -> None:
    idle, origin.idle = origin.idle, []
    for connection in idle:
        connection.close()


def _describe(exc: BaseException) -> str:
    """A short cause without the URL (its query string may carry an API key)."""
    text = type(exc).__name__
    cause = exc.__context__ or exc.__cause__
    while cause is not None and cause.__context__ is not None and len(text) < 200:
        cause = cause.__context__
    if isinstance(exc, AnswerTooLarge):
        return str(exc)
    if cause is not None:
        text += f" ({type(cause).__name__})"
    return text


def redirect_pattern(prefix: str) -> re.Pattern[str]:
    """The URLs a redirect's FROM takes: a URL prefix, where ``*`` stands for any run of
    characters within one part of the host or path (``https://*.api.example.com``), and a
    lone ``*`` for any origin (scheme and host), so every request goes to one place."""
    if prefix == "*":
        return re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
    # It must end where a URL part ends: `https://*.example.com` never takes `...example.com.evil.test`.
    body = "[^/?#]*".join(re.escape(part) for part in prefix.rstrip("/").split("*"))
    return re.compile(body + "(?=[/?#]|$)")


@dataclass
class RedirectTransport:
    """Sends requests whose URL starts with a key of ``redirects`` to its value instead.

    ``{"https://api.example.com": "http://127.0.0.1:8001"}`` turns
    ``https://api.example.com/v3/x`` into ``http://127.0.0.1:8001/v3/x``. A key may hold
    ``*`` wildcards (see ``redirect_pattern``): ``https://*.api.example.com`` takes every
    host a templated URL such as ``https://{{ dc }}.api.example.com`` renders to.
    """

    inner: Transport
    redirects: Mapping[str, str]
    _patterns: list[tuple[re.Pattern[str], str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._patterns = [(redirect_pattern(source), target) for source, target in self.redirects.items()]

    def target(self, url: str) -> str:
        for pattern, replacement in self._patterns:
            found = pattern.match(url)
            if found is not None:
                return replacement.rstrip("/") + url[found.end() :]
        return url

    def send(self, request: Request) -> Response:
        return self.inner.send(dataclasses.replace(request, url=self.target(request.url)))

    def close(self) -> None:
        self.inner.close()


@dataclass
class MockTransport:
    """Answers every request with ``handler(request)``; records what was sent."""

    handler: Callable[[Request], Response]
    sent: list[Request] = field(default_factory=list)

    def send(self, request: Request) -> Response:
        self.sent.append(request)
        return self.handler(request)

    def close(self) -> None:
        pass

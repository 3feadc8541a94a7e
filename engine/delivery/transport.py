"""The thin transport seam: send one Request, get one Response. Nothing else.

``RequestsTransport`` is the real one (a pooled ``requests.Session`` with
connect/read timeouts); ``RedirectTransport`` wraps another to send requests for
a URL prefix elsewhere (how the demo and tests point unmodified presets at local
fakes); ``MockTransport`` answers from a function. Retries, backoff and
classification live in ``deliver.py``, not here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from ..errors import TransportError
from ..runtime.decision import Request

__all__ = [
    "MockTransport",
    "RedirectTransport",
    "RequestsTransport",
    "Response",
    "Transport",
    "redirect_pattern",
    "user_agent",
]


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
class RequestsTransport:
    """Keep-alive pooled HTTP over ``requests``."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 10

    def __post_init__(self) -> None:
        import requests  # imported on first use: `relay validate` never needs it (45 ms)
        from requests.adapters import HTTPAdapter

        self._requests = requests
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(self.pool_size, 1), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # no proxies or netrc credentials from the environment
        self.session.headers["User-Agent"] = user_agent()  # not python-requests/...

    def send(self, request: Request) -> Response:
        try:
            answer = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.content if request.content else None,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
            )
        except self._requests.Timeout as exc:
            raise TransportError("timeout", _describe(exc)) from None
        except self._requests.RequestException as exc:
            raise TransportError("connection_error", _describe(exc)) from None
        return Response(answer.status_code, dict(answer.headers), answer.content)

    def close(self) -> None:
        self.session.close()


def _describe(exc: Exception) -> str:
    """A short cause without the URL's query string (it may carry an API key)."""
    text = type(exc).__name__
    cause = exc.__context__ or exc.__cause__
    while cause is not None and cause.__context__ is not None and len(text) < 200:
        cause = cause.__context__
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

"""What operators and the internet see besides the API: health, readiness, metrics, JSON errors.

Every answer is JSON (or Prometheus text on /metrics), a 404 and a 405 included,
and an unexpected error is a JSON 500 that is logged, never a crash: the process
keeps serving, and nothing it already accepted is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .collector import error_response
from .logs import ServiceLog
from .metrics import CONTENT_TYPE, Metrics

__all__ = ["build_app"]

#: Never refused as busy: operators must see a flooded collector.
_OPERATIONS = ("/health", "/ready", "/metrics")
_CRASHED = "an internal error; nothing was accepted from this request"
_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}


class _Observe:
    """Counts every answer by route template and status, and logs it (a raw path is never a label).

    It also bounds the requests served at once: past ``max_requests`` the answer is a JSON 503
    at once, so a flood costs no body reads and no memory.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, log: ServiceLog, known: set[str], max_requests: int) -> None:
        self.app, self.metrics, self.log, self.known = app, metrics, log, known
        self.max_requests = max_requests
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]
        if self.active >= self.max_requests and scope.get("path") not in _OPERATIONS:
            self.metrics.rejected.labels("busy").inc()
            busy = error_response(503, "busy", f"more than {self.max_requests} requests at once (max_connections)")
            await busy(scope, receive, send)
            self.metrics.http.labels(self._route(scope), "503").inc()
            return
        self.active += 1

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self.active -= 1
            route = self._route(scope)
            self.metrics.http.labels(route, str(status[0])).inc()
            if route not in _OPERATIONS:
                self.log.event("request", method=scope.get("method"), route=route, status=status[0])

    def _route(self, scope: Scope) -> str:
        path = scope.get("path", "")
        return path if path in self.known else "other"


def build_app(
    routes: list[Route],
    metrics: Metrics,
    log: ServiceLog,
    ready: Callable[[], list[str]],
    max_requests: int = 1000,
    direct: Mapping[str, ASGIApp] | None = None,
) -> ASGIApp:
    """The ASGI app: ``routes`` plus /health, /ready and /metrics, with JSON errors everywhere.

    ``direct`` maps POST routes (among ``routes``) to the ASGI app that serves them without
    Starlette's stack when the request has no ``Origin`` (see ``_Direct``).
    """

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    # Synchronous, so Starlette runs them in its thread pool: the delivery process may be asked.
    def readiness(_: Request) -> JSONResponse:
        problems = ready()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, 503)
        return JSONResponse({"status": "ready"})

    def scrape(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), **_allowed(exc))

    async def crash(request: Request, exc: Exception) -> Response:
        log.warning("internal_error", route=request.url.path, error=f"{type(exc).__name__}: {exc}")
        return error_response(500, "internal_error", _CRASHED)

    all_routes = [
        *routes,
        Route("/health", health, methods=["GET"]),
        Route("/ready", readiness, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]
    known = {route.path for route in all_routes}
    app = Starlette(
        routes=all_routes,
        exception_handlers={HTTPException: http_error, Exception: crash},
        middleware=[
            # Browsers post from the site's own origin (analytics.js): allow it, with credentials in
            # the Authorization header only, so no cookie ever authorises a request.
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["POST", "GET"],
                allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
                max_age=3600,
            ),
        ],
    )
    return _Observe(_Direct(app, dict(direct or {}), log), metrics, log, known, max_requests)


class _Direct:
    """POSTs to the collector's routes go straight to their endpoint; everything else to Starlette.

    Only a request without an ``Origin`` header (an SDK or a server, not a browser) is taken:
    CORS adds nothing to its answer, and Starlette's routing, middleware and Request cost about
    150 µs a request. What Starlette would add is kept: an unexpected error is logged and
    answered with a JSON 500 (when no answer was started), never a crash.
    """

    def __init__(self, app: ASGIApp, direct: dict[str, ASGIApp], log: ServiceLog) -> None:
        self.app, self.direct, self.log = app, direct, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.direct.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None or any(name == b"origin" for name, _value in scope["headers"]):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await endpoint(scope, receive, tracked)
        except Exception as exc:
            self.log.warning("internal_error", route=scope["path"], error=f"{type(exc).__name__}: {exc}")
            if not started:
                crashed = error_response(500, "internal_error", _CRASHED)
                await crashed(scope, receive, send)


def _allowed(exc: HTTPException) -> dict[str, Any]:
    allow = (exc.headers or {}).get("Allow")
    return {"allow": allow} if allow else {}

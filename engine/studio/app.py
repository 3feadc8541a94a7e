"""The studio's HTTP side: a Starlette app over ``actions`` (which know nothing of HTTP).

Security, because the page writes files and sends requests:

- the server binds 127.0.0.1 only (``server.py``);
- a request whose ``Host`` is not 127.0.0.1 or localhost is refused (DNS rebinding);
- every ``/api/`` call carries the run's token in ``X-Relay-Token`` (the URL opened
  carries it in its query; the page moves it to a header and off the address bar);
- nothing the API returns holds a secret value (``review`` and ``sandbox`` redact);
- responses forbid framing and inline script, so another page cannot drive this one.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import bundled
from ..errors import EventError, InputError, PresetNotFound, RelayError, SettingsError
from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from .actions import MAX_TEXT, accept_golden, check_text, describe, inputs, preview, save_preset
from .sandbox import FAULTS, FakeHosts
from .workspace import PresetEntry, Workspace

__all__ = ["ALLOWED_HOSTS", "TOKEN_HEADER", "create_app", "static_dir"]

TOKEN_HEADER = "X-Relay-Token"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
#: Largest request body the API reads (a preset text plus a pasted event).
MAX_BODY = 2 * MAX_TEXT

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def static_dir() -> Path:
    """The built page: index.html, the bundled script and styles, and their licences."""
    return Path(str(files("relay.studio").joinpath("static")))


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=str).encode("utf-8")


Handler = Callable[[Request, dict[str, Any]], Any]


def _api(handler: Handler, token: str) -> Callable[[Request], Awaitable[Response]]:
    """Token check, JSON in and out, blocking work off the event loop, errors as JSON."""

    async def endpoint(request: Request) -> Response:
        offered = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return _JSON({"message": "missing or wrong studio token: open the URL `relay studio` printed"}, 403)
        payload: Any = {}
        if request.method == "POST":
            if int(request.headers.get("content-length") or 0) > MAX_BODY:
                return _JSON({"message": f"request body over {MAX_BODY} bytes"}, 413)
            try:
                payload = json.loads(await request.body())
            except ValueError:
                return _JSON({"message": "the request body is not JSON"}, 400)
            if not isinstance(payload, dict):
                return _JSON({"message": "the request body must be a JSON object"}, 400)
        try:
            result = await run_in_threadpool(handler, request, payload)
        except PresetNotFound as exc:
            return _JSON({"message": str(exc)}, 404)
        except (InputError, EventError, SettingsError) as exc:
            return _JSON({"message": str(exc)}, 400)
        except RelayError as exc:
            return _JSON({"message": str(exc)}, 500)
        if isinstance(result, Response):
            return result
        refused = isinstance(result, dict) and (result.get("saved") is False or result.get("accepted") is False)
        return _JSON(result, 409 if refused else 200)

    return endpoint


def create_app(workspace: Workspace, token: str) -> Starlette:
    """The studio app for ``workspace``; ``token`` must come with every API call."""
    fakes = FakeHosts()

    def entry_of(payload: dict[str, Any], request: Request) -> PresetEntry:
        name = request.path_params.get("name") or payload.get("preset")
        if not isinstance(name, str) or not name:
            raise InputError("which preset? (`preset` is missing)")
        return workspace.preset(name)

    def text_of(payload: dict[str, Any]) -> str:
        text = payload.get("text")
        if not isinstance(text, str):
            raise InputError("`text` (the preset's YAML) is missing")
        return text

    def list_presets(request: Request, payload: dict[str, Any]) -> Any:
        return {
            "root": str(workspace.root),
            "presets": [{"name": e.name, "read_only": e.read_only} for e in workspace.presets()],
            "faults": [{"id": key, "label": label} for key, (label, _) in FAULTS.items()],
        }

    def open_preset(request: Request, payload: dict[str, Any]) -> Any:
        return describe(workspace, entry_of(payload, request))

    def schema(request: Request, payload: dict[str, Any]) -> Any:
        return FileResponse(bundled.preset_schema_path(), media_type="application/json")

    def do_preview(request: Request, payload: dict[str, Any]) -> Any:
        entry = entry_of(payload, request)
        return preview(workspace, entry, text_of(payload), _source(payload), payload.get("settings"))

    def do_accept(request: Request, payload: dict[str, Any]) -> Any:
        return accept_golden(workspace, entry_of(payload, request), text_of(payload), str(payload.get("case", "")))

    def do_save(request: Request, payload: dict[str, Any]) -> Any:
        return save_preset(
            entry_of(payload, request),
            text_of(payload),
            str(payload.get("digest", "")),
            allow_invalid=payload.get("allow_invalid") is True,
            allow_changed=payload.get("allow_changed") is True,
        )

    def do_send(request: Request, payload: dict[str, Any]) -> Any:
        entry = entry_of(payload, request)
        preset, errors = check_text(entry, text_of(payload))
        if preset is None:
            return _JSON({"message": "the preset has errors: fix them before sending", "errors": errors}, 409)
        event, settings = _inputs(workspace, entry, preset, payload)
        return fakes.send(preset, settings, event, str(payload.get("fault") or "none"))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            fakes.close()

    def index(_request: Request) -> Response:
        return FileResponse(static_dir() / "index.html", media_type="text/html")

    routes = [
        Route("/", index),
        Route("/api/presets", _api(list_presets, token)),
        Route("/api/presets/{name}", _api(open_preset, token)),
        Route("/api/schema", _api(schema, token)),
        Route("/api/preview", _api(do_preview, token), methods=["POST"]),
        Route("/api/accept", _api(do_accept, token), methods=["POST"]),
        Route("/api/save", _api(do_save, token), methods=["POST"]),
        Route("/api/send", _api(do_send, token), methods=["POST"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    middleware = [
        Middleware(_SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(ALLOWED_HOSTS)),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.fakes = fakes
    return app


def _source(payload: dict[str, Any]) -> dict[str, Any]:
    source = payload.get("event")
    if not isinstance(source, dict):
        raise InputError('`event` must be {"id": ...} or {"json": "..."}')
    return source


def _inputs(
    workspace: Workspace, entry: PresetEntry, preset: CompiledPreset, payload: dict[str, Any]
) -> tuple[Any, Settings]:
    """The event and resolved settings a preview of the same payload would use."""
    chosen = inputs(workspace, entry, preset, _source(payload), payload.get("settings"))
    return chosen.choice.event, chosen.settings

"""Build HTTP requests from rendered parts: auth, headers, encoding, schema check.

Pure: no I/O. The encoded bytes are exactly what the transport sends. The main
request, a read-before-write lookup and preflight-check requests all go through
``assemble`` so they share auth and encoding.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from .decision import Request, redact
from .errors import RenderError, RequestSchemaError
from .model import AuthSpec, CompiledPreset
from .policy import SubRequestSpec
from .templating import to_json

__all__ = ["assemble", "build_request", "build_sub_request", "form_value"]

_CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
Fail = Callable[[str, str], RenderError]


def form_value(value: Any) -> str:
    """How one form field is written: booleans as true/false, objects as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return to_json(value)
    return str(value)


def _apply_auth(auth: AuthSpec, context: Mapping[str, Any], url: str, headers: dict[str, str]) -> tuple[str, set[str]]:
    rendered = {name: renderer(context) for name, renderer in auth.fields.items()}
    if auth.kind == "basic":
        pair = f"{rendered.get('username') or ''}:{rendered.get('password') or ''}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return url, {"Authorization"}
    if auth.kind == "bearer":
        headers["Authorization"] = f"{auth.scheme} {rendered['token']}"
        return url, {"Authorization"}
    if auth.kind == "api_key":
        if auth.location == "header":
            headers[auth.name] = str(rendered["value"])
            return url, {auth.name}
        url += ("&" if urlsplit(url).query else "?") + urlencode({auth.name: str(rendered["value"])})
    return url, set()


def assemble(
    preset: CompiledPreset,
    context: Mapping[str, Any],
    *,
    method: str,
    url: Any,
    headers: Mapping[str, Any],
    body: Any,
    encoding: str,
    fail: Fail,
    where: str,
) -> Request:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise fail(f"{where}/url", "the URL did not render to an absolute http(s) URL")
    out_headers: dict[str, str] = {}
    if body is not None:
        out_headers["Content-Type"] = _CONTENT_TYPES[encoding]
    for name, value in headers.items():
        out_headers[name] = form_value(value)
    url, credential_headers = _apply_auth(preset.request.auth, context, url, out_headers)
    decoded: Any = None
    content = b""
    if body is not None and encoding == "form":
        if not isinstance(body, dict):
            raise fail(f"{where}/body", "a form body must be a mapping of field names to values")
        decoded = {str(k): form_value(v) for k, v in body.items()}
        content = urlencode(list(decoded.items())).encode("ascii")
    elif body is not None:
        decoded = body
        content = to_json(body).encode("utf-8")
    return Request(
        method=method,
        url=url,
        headers=out_headers,
        body=decoded,
        content=content,
        encoding=encoding,
        credential_headers=frozenset(credential_headers),
    )


def _failer(preset: CompiledPreset, secrets: tuple[str, ...], event_ref: str) -> Fail:
    def fail(field: str, message: str) -> RenderError:
        return RenderError(preset.name, field, redact(message, secrets), event_ref=event_ref)

    return fail


def build_request(
    preset: CompiledPreset, context: Mapping[str, Any], secrets: tuple[str, ...], event_ref: str
) -> Request:
    spec = preset.request
    fail = _failer(preset, secrets, event_ref)
    request = assemble(
        preset,
        context,
        method=spec.method,
        url=spec.url(context),
        headers=spec.headers(context),
        body=spec.body(context),
        encoding=spec.encoding,
        fail=fail,
        where="/request",
    )
    if spec.validator is not None:
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in spec.validator.iter_errors(request.body)
        ]
        if problems:
            raise RequestSchemaError(
                preset.name,
                "/request/body",
                redact("the rendered body fails its request schema: " + "; ".join(sorted(problems)), secrets),
                event_ref=event_ref,
            )
    return request


def build_sub_request(
    preset: CompiledPreset, spec: SubRequestSpec, context: Mapping[str, Any], secrets: tuple[str, ...], where: str
) -> Request:
    """A lookup, check or fix request: same auth as the main request, no request schema."""
    body = spec.body(context) if spec.body is not None else None
    return assemble(
        preset,
        context,
        method=spec.method,
        url=spec.url(context),
        headers=spec.headers(context),
        body=body,
        encoding=spec.encoding,
        fail=_failer(preset, secrets, ""),
        where=where,
    )

"""Build the HTTP request from rendered parts: auth, headers, encoding, schema check.

Pure: no I/O. The encoded bytes are exactly what the transport sends.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from .decision import Request, redact
from .errors import RenderError, RequestSchemaError
from .model import CompiledPreset
from .templating import to_json

__all__ = ["build_request", "form_value"]

_CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


def form_value(value: Any) -> str:
    """How one form field is written: booleans as true/false, objects as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return to_json(value)
    return str(value)


def build_request(
    preset: CompiledPreset, context: Mapping[str, Any], secrets: tuple[str, ...], event_ref: str
) -> Request:
    spec = preset.request

    def fail(field: str, message: str, error: type[RenderError] = RenderError) -> RenderError:
        return error(preset.name, field, redact(message, secrets), event_ref=event_ref)

    url = spec.url(context)
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise fail("/request/url", "the URL did not render to an absolute http(s) URL")
    headers: dict[str, str] = {"Content-Type": _CONTENT_TYPES[spec.encoding]}
    for name, value in spec.headers(context).items():
        headers[name] = form_value(value)
    credential_headers: set[str] = set()
    auth = spec.auth
    rendered = {name: renderer(context) for name, renderer in auth.fields.items()}
    if auth.kind == "basic":
        pair = f"{rendered.get('username') or ''}:{rendered.get('password') or ''}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        credential_headers.add("Authorization")
    elif auth.kind == "bearer":
        headers["Authorization"] = f"{auth.scheme} {rendered['token']}"
        credential_headers.add("Authorization")
    elif auth.kind == "api_key":
        if auth.location == "header":
            headers[auth.name] = str(rendered["value"])
            credential_headers.add(auth.name)
        else:
            url += ("&" if urlsplit(url).query else "?") + urlencode({auth.name: str(rendered["value"])})

    body = spec.body(context)
    if spec.encoding == "form":
        if not isinstance(body, dict):
            raise fail("/request/body", "a form body must be a mapping of field names to values")
        decoded: Any = {str(k): form_value(v) for k, v in body.items()}
        content = urlencode(list(decoded.items())).encode("ascii")
    else:
        decoded = body
        content = to_json(body).encode("utf-8")
    if spec.validator is not None:
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in spec.validator.iter_errors(decoded)
        ]
        if problems:
            raise fail(
                "/request/body",
                "the rendered body fails its request schema: " + "; ".join(sorted(problems)),
                RequestSchemaError,
            )
    return Request(
        method=spec.method,
        url=url,
        headers=headers,
        body=decoded,
        content=content,
        encoding=spec.encoding,
        credential_headers=frozenset(credential_headers),
    )

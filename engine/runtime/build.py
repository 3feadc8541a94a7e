"""Build HTTP requests from a Plan: auth, headers, encoding, signing, schema check.

Pure: no I/O; the clock is passed in (only signatures read it). The encoded
bytes are exactly what the transport sends. The main request, a
read-before-write lookup and preflight-check requests all go through
``assemble`` so they share auth and encoding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ..errors import LeafRenderError, RenderError
from ..expr.filters import to_json
from ..expr.limits import text_size
from ..expr.templates import REDACTED, Renderer
from ..preset.flow import MAX_REQUEST, SecretLeaf
from ..preset.model import METHODS, AuthSpec, CompiledPreset, RequestSpec, SignatureSpec, SubRequestSpec
from .decide import RENDER_FAILURES, render_error
from .decision import Plan, Request, Review

__all__ = ["assemble", "build", "build_lookup", "build_sub_request", "form_value"]

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


_BASIC_REVIEW: Review = ((("headers", "Authorization"), f"Basic {REDACTED}"),)


def _apply_auth(
    auths: tuple[tuple[Renderer | None, AuthSpec], ...], context: Mapping[str, Any], url: str, headers: dict[str, str]
) -> tuple[str, set[str], str | None, Review]:
    """Add the credential. Returns the URL, the credential headers, the credential's query
    parameter, and what a review shows in place of the credential."""
    auth = next((a for when, a in auths if when is None or when(context)), None)
    if auth is None:
        return url, set(), None, ()
    rendered = {name: renderer(context) for name, renderer in auth.fields.items()}
    if auth.kind == "basic":
        headers["Authorization"] = _basic(rendered.get("username") or "", rendered.get("password") or "")
        return url, {"Authorization"}, None, _BASIC_REVIEW
    if auth.kind == "bearer":
        headers["Authorization"] = f"{auth.scheme} {rendered['token']}"
        return url, {"Authorization"}, None, ((("headers", "Authorization"), f"{auth.scheme} {REDACTED}"),)
    if auth.kind == "api_key":
        if auth.location == "header":
            headers[auth.name] = str(rendered["value"])
            return url, {auth.name}, None, ((("headers", auth.name), REDACTED),)
        url += _query_separator(url) + urlencode({auth.name: str(rendered["value"])})
        return url, set(), auth.name, ()
    return url, set(), None, ()


def _query_separator(url: str) -> str:
    return "&" if urlsplit(url).query else "?"


def _review(
    secret_leaves: tuple[SecretLeaf, ...],
    context: Mapping[str, Any],
    url: str,
    query_credential: str | None,
    credential: Review,
) -> Review:
    """What a review shows where the request holds a value derived from a secret (rendered
    here, where the context is at hand; only for requests that have such values)."""
    shown = {path: review(context) for path, review in secret_leaves}
    shown.update(credential)
    if query_credential is not None:
        before = shown.get(("url",), url)
        shown[("url",)] = f"{before}{_query_separator(before)}{quote(query_credential)}={REDACTED}"
    return tuple(shown.items())


def _check_headers(headers: Mapping[str, str], credentials: set[str], fail: Fail, where: str) -> None:
    for name, value in headers.items():
        if not value.isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                field = f"{where}/auth" if name in credentials else f"{where}/headers/{name}"
                raise fail(
                    field, f"header {name!r} has characters an HTTP header cannot carry (it can only carry Latin-1)"
                ) from None


@lru_cache(maxsize=64)
def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _sign(spec: SignatureSpec, context: Mapping[str, Any], content: bytes, headers: dict[str, str], now: float) -> None:
    """HMAC over the exact bytes sent, prefixed with ``<timestamp>.`` when a timestamp header is set."""
    message = content
    timestamp = ""
    if spec.timestamp_header:
        timestamp = str(int(now * 1000) if spec.timestamp_unit == "ms" else int(now))
        headers[spec.timestamp_header] = timestamp
        message = timestamp.encode() + b"." + content
    key = str(spec.secret(context)).encode()
    digest = hmac.new(key, message, getattr(hashlib, spec.algorithm)).hexdigest()
    headers[spec.header] = str(spec.value({"signature": digest, "algorithm": spec.algorithm, "timestamp": timestamp}))


def assemble(
    auths: tuple[tuple[Renderer | None, AuthSpec], ...],
    context: Mapping[str, Any],
    *,
    method: Any,
    url: Any,
    headers: Mapping[str, Any],
    body: Any,
    encoding: str,
    fail: Fail,
    where: str,
    secret_leaves: tuple[SecretLeaf, ...] = (),
    check_size: bool = False,
) -> Request:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise fail(f"{where}/url", "the URL did not render to an absolute http(s) URL")
    if method not in METHODS:
        raise fail(f"{where}/method", f"the method rendered to {str(method)[:20]!r}, not one of {sorted(METHODS)}")
    out_headers: dict[str, str] = {}
    if body is not None:
        out_headers["Content-Type"] = _CONTENT_TYPES[encoding]
    for name, value in headers.items():
        out_headers[name] = form_value(value)
    plain_url = url
    url, credential_headers, query_credential, credential = _apply_auth(auths, context, url, out_headers)
    _check_headers(out_headers, credential_headers, fail, where)
    if check_size and (size := len(url) + text_size(out_headers) + text_size(body, MAX_REQUEST)) > MAX_REQUEST:
        raise fail(where, f"request limit: a rendered request may be at most {MAX_REQUEST:,} characters ({size:,}+)")
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
        review=_review(secret_leaves, context, plain_url, query_credential, credential)
        if secret_leaves or query_credential
        else credential,
    )


def _failer(preset: CompiledPreset, secrets: tuple[str, ...], event_ref: str) -> Fail:
    def fail(field: str, message: str) -> RenderError:
        return render_error(preset, field, message, secrets, event_ref)

    return fail


def build(preset: CompiledPreset, plan: Plan, *, lookup: Any = None, now: float) -> Request:
    """The request for a ``send`` plan. ``lookup`` is the read-before-write answer
    (parsed JSON, or None for "nothing there yet") for presets that declare one."""
    context = plan.context
    if preset.lookup is not None:
        context = {**context, preset.lookup.name: lookup}
    try:
        return _build(preset, preset.request.choose(context), context, plan, now)
    except LeafRenderError as failure:
        raise render_error(preset, failure.pointer, str(failure), plan.secrets, plan.event_ref) from None
    except RENDER_FAILURES as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise render_error(preset, "/request", detail, plan.secrets, plan.event_ref) from None


def _build(preset: CompiledPreset, spec: RequestSpec, context: Mapping[str, Any], plan: Plan, now: float) -> Request:
    plan.trace.request = spec.name
    request = assemble(
        spec.auth,
        context,
        method=spec.method(context),
        url=spec.url(context),
        headers=spec.headers(context),
        body=spec.body(context),
        encoding=spec.encoding,
        fail=_failer(preset, plan.secrets, plan.event_ref),
        where=spec.pointer,
        secret_leaves=spec.secret_leaves,
        check_size=spec.check_size,
    )
    signature = spec.signature
    if signature is not None and (signature.when is None or signature.when(context)):
        # A MAC, not a credential: goldens show it, so they pin the exact bytes signed.
        _sign(signature, context, request.content, request.headers, now)
    errors = spec.validator.errors(request.body) if spec.validator is not None else []
    if errors:
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors]
        first = min(errors, key=lambda e: list(map(str, e.absolute_path)))
        raise render_error(
            preset,
            f"{spec.pointer}/body" + "".join(f"/{part}" for part in first.absolute_path),
            "the rendered body fails its request schema: " + "; ".join(sorted(problems)),
            plan.secrets,
            plan.event_ref,
            schema=True,
        )
    return request


def build_lookup(preset: CompiledPreset, plan: Plan) -> Request | None:
    """The read-before-write request to send before ``build``, if the preset declares one."""
    if preset.lookup is None or plan.action != "send":
        return None
    try:
        return build_sub_request(preset, preset.lookup.request, plan.context, plan.secrets, "/request/lookup")
    except LeafRenderError as failure:
        raise render_error(preset, failure.pointer, str(failure), plan.secrets, plan.event_ref) from None


def build_sub_request(
    preset: CompiledPreset, spec: SubRequestSpec, context: Mapping[str, Any], secrets: tuple[str, ...], where: str
) -> Request:
    """A lookup, check or fix request: same auth as the main request, no request schema."""
    body = spec.body(context) if spec.body is not None else None
    return assemble(
        preset.request.auth,
        context,
        method=spec.method,
        url=spec.url(context),
        headers=spec.headers(context),
        body=body,
        encoding=spec.encoding,
        fail=_failer(preset, secrets, ""),
        where=where,
        secret_leaves=spec.secret_leaves,
        check_size=spec.check_size,
    )

"""Compile requests: the one request component used by an event's steps, checks and fixes.

A step sees the event's scope (selectors, variables, ``fields``...), the answers
earlier steps bound with ``as``, and ``now``; its headers also see ``content``,
the encoded body, so a preset can sign exactly the bytes it sends. Auth sees only
settings and constants: credentials come from settings, never from events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema.exceptions import SchemaError

from ..errors import PresetError
from ..expr.templates import REDACTED, Allowed, Renderer
from .builder import Builder
from .flow import credential_shown
from .model import METHODS, Auths, AuthSpec, StepSpec
from .schema import BodyValidator, request_validator

__all__ = ["compile_auths", "compile_step", "compile_steps", "schema_validator"]

_TEMPLATE_AUTH_FIELDS = {"basic": ("username", "password"), "bearer": ("token",), "api_key": ("value",)}
_SECRET_AUTH_FIELDS = {"password", "token", "value"}


def compile_steps(builder: Builder, raw: list[dict[str, Any]], allowed: Allowed, auth: Auths) -> tuple[StepSpec, ...]:
    steps: list[StepSpec] = []
    bound: dict[str, Any] = {}
    for index, item in enumerate(raw):
        pointer = f"/requests/{index}"
        if item["name"] in (step.name for step in steps):
            builder.error(f"{pointer}/name", f"duplicate request name '{item['name']}'")
        source = (
            _only_batched(builder, item, pointer) if "url" not in item and isinstance(item.get("batch"), dict) else item
        )
        step = compile_step(builder, source, {**allowed, **bound, "now": None}, auth, pointer, default_role="write")
        if step.bind is not None:
            if step.bind in allowed or step.bind in bound:
                builder.error(f"{pointer}/as", f"'{step.bind}' is already a name templates use", hint="pick another")
            bound[step.bind] = None
        steps.append(step)
    return tuple(steps)


#: What a request without a ``url`` may not say: it has no request of its own (``batch`` says it).
_OWN_REQUEST = ("method", "headers", "encoding", "body", "schema", "auth", "as", "missing")


def _only_batched(builder: Builder, raw: dict[str, Any], pointer: str) -> dict[str, Any]:
    """A request sent only batched (no ``url``): its one-by-one parts must be absent; it compiles
    with an empty URL, which ``build`` never renders (it skips such a request)."""
    for key in _OWN_REQUEST:
        if key in raw:
            builder.error(
                f"{pointer}/{key}",
                f"a request with no `url` is sent only batched: it has no `{key}` of its own",
                hint="give the request a `url` (its one-by-one form), or say this under `batch`",
            )
    return {**{k: v for k, v in raw.items() if k not in _OWN_REQUEST}, "method": "POST", "url": ""}


def compile_step(
    builder: Builder, raw: dict[str, Any], allowed: Allowed, auth: Auths, pointer: str, *, default_role: str
) -> StepSpec:
    """One request; ``auth`` is used unless the request declares its own."""
    if "url" not in raw:  # only a request of `requests` that batches may leave it out
        builder.error(pointer, "'url' is a required property")
        raw = {**raw, "url": ""}
    method = raw.get("method", "GET")
    if method not in METHODS and "{{" not in method:
        builder.error(f"{pointer}/method", f"unknown method {method!r}", hint=f"one of {', '.join(sorted(METHODS))}")
    body = raw.get("body")
    header_allowed: Allowed = {**allowed, "content": None}
    schema_path, validator = None, None
    if "schema" in raw:
        schema_path, validator = schema_validator(builder, raw["schema"], f"{pointer}/schema")
    if "missing" in raw and "as" not in raw:
        builder.error(f"{pointer}/missing", "`missing` says what to bind when nothing is there: it needs `as`")
    # Every template leaf of the request, by where it sits in it: for the secret and size flow.
    leaves: list[tuple[tuple[str | int, ...], str]] = []

    def tree(key: str, source: Any, scope: Allowed) -> Renderer:
        def found(path: tuple[str | int, ...], leaf: str) -> None:
            leaves.append(((key, *path), leaf))

        return builder.tree(source, scope, f"{pointer}/{key}", on_leaf=found)

    step_auth = compile_auths(builder, raw["auth"], _auth_scope(allowed), f"{pointer}/auth") if "auth" in raw else auth
    method_of, url_of = tree("method", method, allowed), tree("url", raw["url"], allowed)
    headers_of = tree("headers", raw.get("headers", {}), header_allowed)
    body_of = tree("body", body, allowed) if body is not None else None
    secret_leaves, check_size = builder.flow.request(
        leaves, credentials=max((len(a.fields) for _, a in step_auth), default=0)
    )
    return StepSpec(
        name=raw["name"],
        pointer=pointer,
        role=raw.get("role", default_role),
        when=builder.expression(raw["when"], allowed, f"{pointer}/when") if "when" in raw else None,
        method=method_of,
        url=url_of,
        headers=headers_of,
        encoding=raw.get("encoding", "json"),
        body=body_of,
        validator=validator,
        schema_path=schema_path,
        auth=step_auth,
        bind=raw.get("as"),
        missing=frozenset(raw.get("missing", ())),
        when_source=raw.get("when"),
        method_source=str(method),
        url_source=str(raw["url"]),
        schema_source=str(raw.get("schema", "")),
        secret_leaves=secret_leaves,
        check_size=check_size,
    )


def _auth_scope(allowed: Allowed) -> Allowed:
    return {name: allowed[name] for name in ("settings", "constants") if name in allowed}


def schema_validator(builder: Builder, relative: str, pointer: str) -> tuple[Path, BodyValidator | None]:
    """The validator of the JSON Schema at ``relative`` (to the file that wrote ``pointer``)."""
    # Relative to the file that wrote it: with `extends`, that may be another preset's file.
    schema_path = (Path(builder.doc.locate(pointer).file).parent / relative).resolve()
    if not schema_path.is_file():
        builder.error(pointer, f"request schema not found: {relative}", hint=f"looked for {schema_path}")
        return schema_path, None
    try:
        return schema_path, request_validator(schema_path)
    except PresetError as exc:  # unreadable, past the file limit, or not UTF-8
        builder.error(pointer, f"request schema {relative}: {exc.message}", hint=exc.hint)
    except ValueError as exc:
        builder.error(pointer, f"request schema is not valid JSON: {exc}")
    except RecursionError:
        builder.error(pointer, f"request schema {relative} is nested too deeply")
    except SchemaError as exc:
        builder.error(pointer, f"request schema is not a valid JSON Schema: {exc.message}")
    return schema_path, None


def compile_auths(builder: Builder, raw: Any, allowed: Allowed, pointer: str) -> Auths:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for index, item in enumerate(items):
        where = f"{pointer}/{index}" if isinstance(raw, list) else pointer
        when = builder.expression(item["when"], allowed, f"{where}/when") if "when" in item else None
        out.append((when, _auth(builder, item, allowed, where)))
    return tuple(out)


def _auth(builder: Builder, raw: dict[str, Any], allowed: Allowed, pointer: str) -> AuthSpec:
    fields: dict[str, Renderer] = {}
    for field in _TEMPLATE_AUTH_FIELDS.get(raw["type"], ()):
        source = raw.get(field)
        if source is None:
            continue
        if field in _SECRET_AUTH_FIELDS and "{{" not in source:
            builder.error(
                f"{pointer}/{field}",
                "a credential is written inline in the preset",
                hint="declare a `secret: true` setting and write `{{ settings.<name> }}` here",
            )
        fields[field] = builder.tree(source, allowed, f"{pointer}/{field}")
    return AuthSpec(
        kind=raw["type"],
        fields=fields,
        location=raw.get("in", "header"),
        name=raw.get("name", ""),
        when_source=raw.get("when"),
        shown=credential_shown(raw["value"]) if raw["type"] == "api_key" and "value" in raw else REDACTED,
    )

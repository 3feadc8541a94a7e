"""Compile ``request``: method, URL, auth (one, or a list chosen by ``when``), signing and variants.

A variant overrides some keys of the request and inherits the rest, already
compiled, so an error in a variant points at the variant's own line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..errors import PresetError
from ..expr import templates
from ..expr.templates import Allowed, Renderer
from .builder import Builder
from .model import AuthSpec, RequestSpec, SignatureSpec
from .schema import BodyValidator, load_json_schema

__all__ = ["compile_request"]

_TEMPLATE_AUTH_FIELDS = {"basic": ("username", "password"), "bearer": ("token",), "api_key": ("value",)}
_SECRET_AUTH_FIELDS = {"password", "token", "value"}


def compile_request(builder: Builder, raw: dict[str, Any], allowed: Allowed) -> RequestSpec:
    base = _spec(builder, raw, allowed, "/request", None, "default")
    variants = []
    for index, variant in enumerate(raw.get("variants", [])):
        pointer = f"/request/variants/{index}"
        when = builder.expression(variant["when"], allowed, f"{pointer}/when")
        spec = _spec(builder, variant, allowed, pointer, base, variant["name"])
        variants.append((when or _never, spec))
    names = [v["name"] for v in raw.get("variants", [])]
    for index, name in enumerate(names):
        if name in names[:index]:
            builder.error(f"/request/variants/{index}/name", f"duplicate variant name '{name}'")
    base.variants = tuple(variants)
    return base


def _never(_context: Any) -> bool:
    return False


def _spec(
    builder: Builder, raw: dict[str, Any], allowed: Allowed, pointer: str, base: RequestSpec | None, name: str
) -> RequestSpec:
    # The leaves of url, method, headers and body, by where they sit in the request.
    leaves: list[tuple[tuple[str | int, ...], str]] = []
    sources: dict[str, Any] = {}

    def tree(key: str, default: Any = None) -> Renderer:
        def found(path: tuple[str | int, ...], source: str) -> None:
            leaves.append(((key, *path), source))

        if key in raw or base is None:
            sources[key] = raw.get(key, default)
            return builder.tree(sources[key], allowed, f"{pointer}/{key}", on_leaf=found)
        sources[key] = base.sources[key]
        leaves.extend(leaf for leaf in base.leaf_sources if leaf[0][0] == key)
        return getattr(base, key)  # type: ignore[no-any-return]

    def source(key: str) -> str:
        if key in raw:
            return str(raw[key])
        return str(getattr(base, f"{key}_source")) if base is not None else ""

    schema_path, validator = (base.schema_path, base.validator) if base is not None else (Path(), None)
    if "schema" in raw:
        schema_path, validator = _validator(builder, raw["schema"], f"{pointer}/schema")
    signature = base.signature if base is not None else None
    if "signature" in raw:
        signature = _signature(builder, raw["signature"], allowed, f"{pointer}/signature")
    auth = base.auth if base is not None else ()
    if "auth" in raw:
        auth = _auths(builder, raw["auth"], allowed, f"{pointer}/auth")
    method, url, headers, body = tree("method"), tree("url"), tree("headers", {}), tree("body")
    return RequestSpec(
        name=name,
        pointer=pointer,
        method=method,
        url=url,
        auth=auth,
        headers=headers,
        encoding=raw.get("encoding", base.encoding if base else "json"),
        body=body,
        validator=validator,
        schema_path=schema_path,
        signature=signature,
        method_source=source("method"),
        url_source=source("url"),
        schema_source=source("schema"),
        when_source=raw.get("when"),
        secret_leaves=builder.flow.secret_leaves(leaves),
        check_size=builder.flow.needs_size_check(
            sources.values(), extra=max((len(a.fields) for _, a in auth), default=0)
        ),
        sources=sources,
        leaf_sources=tuple(leaves),
    )


def _validator(builder: Builder, relative: str, pointer: str) -> tuple[Path, BodyValidator | None]:
    schema_path = (Path(builder.doc.file).parent / relative).resolve()
    if not schema_path.is_file():
        builder.error(pointer, f"request schema not found: {relative}", hint=f"looked for {schema_path}")
        return schema_path, None
    try:
        schema = load_json_schema(schema_path)
        Draft202012Validator.check_schema(schema)
        return schema_path, BodyValidator(schema, fast=templates.FAST_PATH)
    except PresetError as exc:  # unreadable, past the file limit, or not UTF-8
        builder.error(pointer, f"request schema {relative}: {exc.message}", hint=exc.hint)
    except ValueError as exc:
        builder.error(pointer, f"request schema is not valid JSON: {exc}")
    except RecursionError:
        builder.error(pointer, f"request schema {relative} is nested too deeply")
    except SchemaError as exc:
        builder.error(pointer, f"request schema is not a valid JSON Schema: {exc.message}")
    return schema_path, None


def _auths(builder: Builder, raw: Any, allowed: Allowed, pointer: str) -> tuple[tuple[Renderer | None, AuthSpec], ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for index, item in enumerate(items):
        where = f"{pointer}/{index}" if isinstance(raw, list) else pointer
        when = builder.expression(item["when"], allowed, f"{where}/when") if "when" in item else None
        out.append((when, _auth(builder, item, allowed, where)))
    return tuple(out)


def _auth(builder: Builder, raw: dict[str, Any], allowed: Allowed, pointer: str) -> AuthSpec:
    fields = {}
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
        scheme=raw.get("scheme", "Bearer"),
        location=raw.get("in", "header"),
        name=raw.get("name", ""),
        when_source=raw.get("when"),
    )


def _signature(builder: Builder, raw: dict[str, Any], allowed: Allowed, pointer: str) -> SignatureSpec:
    if "{{" not in raw["secret"]:
        builder.error(
            f"{pointer}/secret",
            "a signing secret is written inline in the preset",
            hint="declare a `secret: true` setting and write `{{ settings.<name> }}` here",
        )
    value_names: Allowed = {"signature": None, "algorithm": None, "timestamp": None}
    return SignatureSpec(
        algorithm=raw.get("algorithm", "sha256"),
        secret=builder.tree(raw["secret"], allowed, f"{pointer}/secret"),
        header=raw["header"],
        value=builder.tree(raw.get("value", "{{ algorithm }}={{ signature }}"), value_names, f"{pointer}/value"),
        timestamp_header=raw.get("timestamp_header"),
        timestamp_unit=raw.get("timestamp_unit", "s"),
        when=builder.expression(raw["when"], allowed, f"{pointer}/when") if "when" in raw else None,
        when_source=raw.get("when"),
    )

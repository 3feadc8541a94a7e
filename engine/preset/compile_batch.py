"""Compile a request's ``batch`` section: items, the bulk request, its job and its results.

Names each part sees (checked here, at load time):

- ``item``, ``group``, ``key``: the event's scope, exactly what the request's own
  ``body`` sees (selectors, variables, ``fields``, earlier answers, ``now``);
- the bulk request: only what every event of a batch shares: ``group``, ``items``,
  ``settings``, ``constants``, ``now`` (headers also ``content``);
- ``job``: ``response`` (the bulk answer) for its ``id``; ``job`` and ``group`` for the
  status request; ``response`` (a status answer) for ``status`` and ``message``;
- ``results``: ``response`` (the final answer, or the report's) and, per error, ``error``.

Defaults come from the preset schema, the one place they are written.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .. import bundled
from ..expr.templates import Allowed
from .builder import Builder
from .compile_request import compile_step, schema_validator
from .model import Auths, BatchSpec, JobSpec, ResultsSpec, StepSpec
from .schema import load_json_schema

__all__ = ["batch_default", "compile_batch"]


@cache
def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = load_json_schema(bundled.preset_schema_path())["$defs"]
    return definitions


def batch_default(*path: str) -> Any:
    """The schema's default for ``batch.<path>``, e.g. ``batch_default("limits", "items")``;
    ``batch_default("job", "every")`` reads the job's."""
    node: Any = _definitions()["batch_job"] if path[0] == "job" else _definitions()["batch"]
    for part in path[1:] if path[0] == "job" else path:
        node = node["properties"][part]
    return node["default"]


def compile_batch(
    builder: Builder, raw: dict[str, Any], event_allowed: Allowed, auth: Auths, step: dict[str, Any], pointer: str
) -> BatchSpec:
    """The ``batch`` of the request ``step`` (its raw mapping), at ``pointer`` (``/requests/N/batch``)."""
    shared: Allowed = {name: event_allowed[name] for name in ("settings", "constants") if name in event_allowed}
    shared = {**shared, "now": None, "group": None}
    request = compile_step(
        builder,
        {
            "name": step["name"],
            "role": step.get("role", "write"),
            "method": raw.get("method", batch_default("method")),
            **{key: raw[key] for key in ("url", "headers", "encoding", "body", "schema") if key in raw},
        },
        {**shared, "items": None},
        auth,
        pointer,
        default_role="write",
    )
    item_schema_path, item_validator = None, None
    if "item_schema" in raw:
        item_schema_path, item_validator = schema_validator(builder, raw["item_schema"], f"{pointer}/item_schema")
    limits = raw.get("limits", {})
    job = _job(builder, raw["job"], shared, auth, step["name"], f"{pointer}/job") if "job" in raw else None
    results = None
    if "results" in raw:
        answer_scope = {**shared, "job": None} if job is not None else shared
        results = _results(builder, raw["results"], answer_scope, auth, step["name"], f"{pointer}/results")
    return BatchSpec(
        pointer=pointer,
        request=request,
        item=builder.tree(raw["item"], event_allowed, f"{pointer}/item"),
        item_validator=item_validator,
        item_schema_path=item_schema_path,
        group=builder.tree(raw["group"], event_allowed, f"{pointer}/group") if "group" in raw else None,
        key=builder.tree(raw["key"], event_allowed, f"{pointer}/key") if "key" in raw else None,
        max_items=limits.get("items", batch_default("limits", "items")),
        max_bytes=limits.get("bytes"),
        flush=raw.get("flush", batch_default("flush")),
        job=job,
        results=results,
        when=builder.expression(raw["when"], event_allowed, f"{pointer}/when") if "when" in raw else None,
    )


def _side_request(
    builder: Builder, raw: dict[str, Any], allowed: Allowed, auth: Auths, name: str, pointer: str
) -> StepSpec:
    """A status or report request: a GET (unless it says otherwise) with the preset's auth."""
    fields = {"name": name, "role": "read", "method": raw.get("method", "GET"), "url": raw["url"]}
    if "headers" in raw:
        fields["headers"] = raw["headers"]
    return compile_step(builder, fields, allowed, auth, pointer, default_role="read")


def _job(builder: Builder, raw: dict[str, Any], shared: Allowed, auth: Auths, name: str, pointer: str) -> JobSpec:
    answer: Allowed = {**shared, "response": None}
    message = builder.tree(raw["message"], answer, f"{pointer}/message") if "message" in raw else None
    return JobSpec(
        id=builder.tree(raw["id"], answer, f"{pointer}/id"),
        poll=_side_request(builder, raw, {**shared, "job": None}, auth, name, pointer),
        every=raw.get("every", batch_default("job", "every")),
        timeout=raw.get("timeout", batch_default("job", "timeout")),
        status=builder.tree(raw["status"], answer, f"{pointer}/status"),
        done=frozenset(str(s) for s in raw["done"]),
        failed=frozenset(str(s) for s in raw.get("failed", ())),
        message=message,
    )


def _results(
    builder: Builder, raw: dict[str, Any], scope: Allowed, auth: Auths, name: str, pointer: str
) -> ResultsSpec:
    answer: Allowed = {**scope, "response": None, "status": None}
    per_error: Allowed = {**answer, "error": None}
    request = None
    if "request" in raw:
        request = _side_request(builder, raw["request"], answer, auth, name, f"{pointer}/request")
    message = builder.tree(raw["message"], per_error, f"{pointer}/message") if "message" in raw else None
    hint = builder.tree(raw["hint"], {**per_error, "message": None}, f"{pointer}/hint") if "hint" in raw else None
    return ResultsSpec(
        errors=builder.expression(raw["errors"], answer, f"{pointer}/errors") or _nothing,
        key=builder.tree(raw["key"], per_error, f"{pointer}/key") if "key" in raw else None,
        index=builder.tree(raw["index"], per_error, f"{pointer}/index") if "index" in raw else None,
        message=message,
        hint=hint,
        when=builder.expression(raw["when"], answer, f"{pointer}/when") if "when" in raw else None,
        request=request,
        count=builder.tree(raw["count"], answer, f"{pointer}/count") if "count" in raw else None,
    )


def _nothing(_scope: Any) -> list[Any]:
    return []

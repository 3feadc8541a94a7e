"""Validate a loaded preset against ``schemas/preset.schema.json``, every error located."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .. import bundled
from ..errors import PresetError
from ..expr.templates import did_you_mean
from ..jsonpointer import escape_pointer
from .source import SourceDoc, read_text

__all__ = [
    "BodyValidator",
    "load_json_schema",
    "located_errors",
    "preset_validator",
    "request_validator",
    "schema_errors",
]


@cache
def load_json_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema file (OSError when missing, ValueError when not JSON, PresetError past the file limits)."""
    schema: dict[str, Any] = json.loads(read_text(path))
    return schema


@cache
def request_validator(path: Path) -> BodyValidator:
    """The validator of the request schema at ``path``, once per file: many steps and batches
    name the same schema, and checking it against the meta-schema is most of a preset's load.
    Raises as ``load_json_schema`` does, and SchemaError when it is not a valid JSON Schema."""
    schema = load_json_schema(path)
    Draft202012Validator.check_schema(schema)
    return BodyValidator(schema)


@cache
def preset_validator() -> Draft202012Validator:
    schema = load_json_schema(bundled.preset_schema_path())
    return Draft202012Validator(schema)


def _pointer(path: Any) -> str:
    return "".join(f"/{escape_pointer(part)}" for part in path)


def _allowed_keys(error: ValidationError) -> list[str]:
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return list(properties)


def _to_preset_errors(error: ValidationError, doc: SourceDoc) -> list[PresetError]:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error)
        out = []
        for extra in [k for k in error.instance if k not in allowed]:
            pointer = _pointer([*error.absolute_path, extra])
            hint = did_you_mean(extra, allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else None)
            out.append(doc.error(pointer, f"unknown key '{extra}'", key=True, hint=hint))
        return out
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the branches meant for this kind of value (an object branch for an
        # object), not the ones rejected on type alone; best_match often picks those.
        by_branch: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        fitting = [
            errs
            for errs in by_branch.values()
            if not any(e.validator in ("type", "const", "enum") and not e.relative_path for e in errs)
        ]
        if len(fitting) == 1:
            return [found for sub in fitting[0] for found in _to_preset_errors(sub, doc)]
        return _to_preset_errors(best_match(error.context), doc)
    pointer = _pointer(error.absolute_path)
    message = error.message
    hint = None
    if error.validator == "required":
        message = error.message.replace("is a required property", "is required here")
    elif error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, str) else None
        hint = _TYPE_HINTS.get(wanted or "")
    elif error.validator == "enum" and isinstance(error.validator_value, list):
        hint = "write one of: " + ", ".join(map(str, error.validator_value))
    return [doc.error(pointer, message, hint=hint)]


_TYPE_HINTS = {
    "boolean": "write true or false (unquoted)",
    "integer": "write a whole number, unquoted, e.g. 3",
    "number": "write a number, unquoted, e.g. 0.5",
    "string": "write text; quote it if it starts with { or contains ': '",
    "array": "write a list, e.g. [a, b] or one '- item' per line",
    "object": "write a mapping of keys to values, e.g. {key: value}",
}


def schema_errors(doc: SourceDoc, validator: Draft202012Validator | None = None) -> list[PresetError]:
    """Every violation of ``validator`` (default: the preset schema) in ``doc``, each pointing at its line."""
    return located_errors(validator or preset_validator(), doc.data, doc)


def located_errors(validator: Draft202012Validator, instance: Any, doc: SourceDoc) -> list[PresetError]:
    """Every violation of ``validator``'s schema in ``instance`` (``doc``'s data or a part of
    it), each located in ``doc``, with "did you mean" for unknown keys."""
    errors: list[PresetError] = []
    for error in validator.iter_errors(instance):
        errors.extend(_to_preset_errors(error, doc))
    unique: dict[str, PresetError] = {str(e): e for e in errors}
    return list(unique.values())


class BodyValidator:
    """Checks rendered bodies against a request schema, compiled when the preset loads.

    One verdict: JSON Schema 2020-12 as ``jsonschema`` reads it (``format`` and the content
    keywords are annotations, as 2020-12 says by default), plus one check of relay's own: a
    top-level property declared ``contentMediaType: application/json`` with a
    ``contentSchema`` (a form field that carries JSON text) must be JSON text that its
    ``contentSchema`` accepts.

    A schema whose keywords all mean the same in fastjsonschema's draft 7 as in 2020-12
    (``FAITHFUL``; the bundled ones) is compiled by fastjsonschema, about 20x faster, and
    that code gives the verdict; any other schema is checked by jsonschema alone. Either
    way, jsonschema writes the messages of a body that is refused. ``tests/test_schema_verdict.py``
    holds the two to the same verdicts.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.plain = Draft202012Validator(schema)
        self._fast = _compile_fast(json.dumps(schema, sort_keys=True)) if faithful(schema) else None
        declared = schema.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        self._contents = {
            name: BodyValidator(spec["contentSchema"])
            for name, spec in properties.items()
            if isinstance(spec, dict) and spec.get("contentMediaType") == JSON_MEDIA_TYPE and "contentSchema" in spec
        }

    @property
    def compiled(self) -> bool:
        """Whether fastjsonschema's code gives the verdict (else jsonschema does)."""
        return self._fast is not None

    def accepts(self, body: Any) -> bool:
        """The verdict: True when the schema accepts ``body``."""
        if self._fast is not None:
            try:
                self._fast(body)
            except fastjsonschema.JsonSchemaException:
                return False
        elif not self.plain.is_valid(body):
            return False
        return not self._contents or not self._content_errors(body)

    def errors(self, body: Any) -> list[ValidationError]:
        """Every problem with ``body``, each with jsonschema's message (empty: accepted)."""
        return list(self.plain.iter_errors(body)) + self._content_errors(body)

    def refusal(self, body: Any) -> str:
        """Why fastjsonschema refused ``body``, for the case jsonschema finds no fault to name."""
        try:
            if self._fast is not None:
                self._fast(body)
        except fastjsonschema.JsonSchemaException as exc:
            return str(exc.message)  # type: ignore[attr-defined]
        return "refused"

    def _content_errors(self, body: Any) -> list[ValidationError]:
        if not self._contents or not isinstance(body, dict):
            return []
        found: list[ValidationError] = []
        for name, validator in self._contents.items():
            text = body.get(name)
            if not isinstance(text, str):
                continue  # absent or not text: the structural schema says whether that is allowed
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError as exc:
                found.append(ValidationError(f"is not JSON text ({exc.msg})", path=[name], instance=text))
                continue
            if validator.accepts(decoded):
                continue
            for error in validator.errors(decoded):
                error.path.appendleft(name)
                found.append(error)
        return found


#: The media type of a property whose text is JSON, validated against its ``contentSchema``.
JSON_MEDIA_TYPE = "application/json"

#: Keywords that mean the same to fastjsonschema (draft 7) as to JSON Schema 2020-12.
FAITHFUL = frozenset(
    {"type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties"}
    | {"propertyNames", "minProperties", "maxProperties", "items", "minItems", "maxItems", "uniqueItems"}
    | {"contains", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum"}
    | {"exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"}
)
#: Keywords that only annotate (in 2020-12 by default): they never change a verdict.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated", "readOnly"}
    | {"writeOnly", "format", "contentMediaType", "contentEncoding", "contentSchema"}
)
_SUBSCHEMAS = {"properties", "patternProperties"}
_SUBSCHEMA = {"additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else"}
_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}


def faithful(schema: Any) -> bool:
    """Whether fastjsonschema reads ``schema`` as 2020-12 does (annotations set aside)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not set(schema) <= FAITHFUL | ANNOTATIONS:
        return False
    if isinstance(schema.get("exclusiveMinimum", 0), bool) or isinstance(schema.get("exclusiveMaximum", 0), bool):
        return False  # draft 4's boolean form
    for key, value in schema.items():
        if key in _SUBSCHEMAS and not (isinstance(value, dict) and all(faithful(v) for v in value.values())):
            return False
        if key in _SUBSCHEMA and not faithful(value):  # `items` as a list is not 2020-12's items
            return False
        if key in _SUBSCHEMA_LISTS and not (isinstance(value, list) and all(faithful(v) for v in value)):
            return False
    return True


def _without_annotations(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_annotations(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key in _SUBSCHEMAS and isinstance(value, dict):
            out[key] = {name: _without_annotations(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA or key in _SUBSCHEMA_LISTS:
            out[key] = _without_annotations(value)
        else:
            out[key] = value  # enum and const values are data, kept as written
    return out


@lru_cache(maxsize=256)
def _compile_fast(schema_text: str) -> Any:
    """A schema's fastjsonschema code (by its text: schemas shared by presets compile once), or
    None when fastjsonschema cannot compile it (jsonschema then decides alone). Defaults are
    never filled in (the body is not changed) and ``format`` is not checked."""
    schema = _without_annotations(json.loads(schema_text))
    try:
        return fastjsonschema.compile(schema, use_default=False, use_formats=False)
    except Exception:  # a pattern Python cannot compile, say: decided once, when the preset loads
        return None

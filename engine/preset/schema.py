"""Validate a loaded preset against ``schemas/preset.schema.json``, every error located."""

from __future__ import annotations

import json
from functools import cache
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

__all__ = ["BodyValidator", "load_json_schema", "located_errors", "preset_validator", "schema_errors"]


@cache
def load_json_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema file (OSError when missing, ValueError when not JSON, PresetError past the file limits)."""
    schema: dict[str, Any] = json.loads(read_text(path))
    return schema


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
    """Validates rendered bodies against a request schema.

    ``plain`` is the jsonschema validator: the reference, and the source of every
    message. The fast path is the same schema compiled to Python by fastjsonschema
    (about 20x faster), built on first use so ``relay validate`` never pays for it;
    only a body it rejects is run through ``plain`` for the messages.

    A top-level property declared ``contentMediaType: application/json`` with a
    ``contentSchema`` (a form field that carries JSON text) is decoded and checked
    against that schema too: JSON Schema itself treats both keywords as annotations.
    """

    def __init__(self, schema: dict[str, Any], *, fast: bool = True) -> None:
        self.schema = schema
        self.plain = Draft202012Validator(schema)
        self._use_fast = fast
        self._fast: Any = None
        declared = schema.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        self._contents = {
            name: BodyValidator(spec["contentSchema"], fast=fast)
            for name, spec in properties.items()
            if isinstance(spec, dict) and spec.get("contentMediaType") == JSON_MEDIA_TYPE and "contentSchema" in spec
        }

    def errors(self, body: Any) -> list[ValidationError]:
        return self._structure_errors(body) + self._content_errors(body)

    def _structure_errors(self, body: Any) -> list[ValidationError]:
        if self._use_fast:
            if self._fast is None:
                self._fast = _compile_fast(self.schema)
            if self._fast is not False:
                try:
                    self._fast(body)
                except fastjsonschema.JsonSchemaException:
                    pass
                else:
                    return []
        return list(self.plain.iter_errors(body))

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
            for error in validator.errors(decoded):
                error.path.appendleft(name)
                found.append(error)
        return found


#: The media type of a property whose text is JSON, validated against its ``contentSchema``.
JSON_MEDIA_TYPE = "application/json"


def _compile_fast(schema: dict[str, Any]) -> Any:
    try:
        return fastjsonschema.compile(schema)
    except Exception:  # a keyword it does not support: plain validation only
        return False

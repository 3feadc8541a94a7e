"""Settings: load a YAML/JSON file, fill secrets from the environment, validate."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .. import bundled
from ..errors import PresetError, SettingsError
from ..expr.templates import did_you_mean
from .schema import load_json_schema, located_errors
from .source import SourceDoc, load_yaml, read_text

__all__ = [
    "RESERVED",
    "RunOptions",
    "SettingSpec",
    "Settings",
    "load_settings_doc",
    "load_settings_file",
    "resolve_settings",
    "split_run_options",
]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class SettingSpec:
    name: str
    type: str
    required: bool = False
    secret: bool = False
    enum: tuple[Any, ...] | None = None
    default: Any = None
    env: str | None = None
    description: str = ""
    #: A regular expression the whole (string) value must match.
    pattern: str | None = None

    def type_problem(self, value: Any) -> str | None:
        ok = isinstance(value, _JSON_TYPES[self.type]) and not (isinstance(value, bool) and self.type != "boolean")
        if not ok:
            return f"expected {self.type}, got {_json_type(value)}"
        if self.enum is not None and value not in self.enum:
            if self.secret:
                return "is not one of the allowed values"
            return f"{value!r} is not one of {', '.join(map(repr, self.enum))}"
        if self.pattern is not None and isinstance(value, str) and not re.fullmatch(self.pattern, value):
            # A secret's value is never echoed; the pattern says what was expected.
            return f"does not match the pattern {self.pattern}" + ("" if self.secret else f" (got {value!r})")
        return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


@dataclass(frozen=True)
class Settings:
    """Validated settings. ``secrets`` holds secret values, used only for redaction."""

    values: dict[str, Any]
    secrets: tuple[str, ...]


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """Read a settings file (YAML or JSON); an error names the file and line."""
    return dict(load_settings_doc(path).data)


def load_settings_doc(path: str | Path) -> SourceDoc:
    """A settings file with the location of each value (none for JSON), or SettingsError
    naming the file: unreadable, past the file limits, not UTF-8, not YAML/JSON, not a mapping."""
    path = Path(path)
    try:
        json_file = path.suffix == ".json"
        doc = SourceDoc(file=str(path), data=json.loads(read_text(path))) if json_file else load_yaml(path)
    except PresetError as exc:
        raise SettingsError("", [str(exc)], file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SettingsError("", [f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"], file=str(path)) from None
    except RecursionError:
        raise SettingsError("", [f"{path}:1:1: JSON nested too deeply"], file=str(path)) from None
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise SettingsError("", [f"{path}:1:1: settings must be a mapping of name to value"], file=str(path))
    return doc


def resolve_settings(
    preset_name: str,
    specs: Mapping[str, SettingSpec],
    raw: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Apply defaults and environment variables, then validate every field at once."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key not in specs:
            hint = did_you_mean(str(key), specs)
            problems.append(f"{key}: unknown setting" + (f" ({hint})" if hint else ""))
    for name, spec in specs.items():
        value = raw.get(name)
        if isinstance(value, dict) and set(value) == {"env"}:
            value = environ.get(str(value["env"]))
            if value is None:
                problems.append(f"{name}: environment variable {raw[name]['env']} is not set")
                continue
        if value is None and spec.env:
            value = environ.get(spec.env)
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                where = f" (or set ${spec.env})" if spec.env else ""
                problems.append(f"{name}: required setting is missing{where}")
            values[name] = None  # declared but unset: templates can test it (`settings.x is none`)
            continue
        if isinstance(value, str) and spec.type in ("integer", "number") and (environ.get(spec.env or "") == value):
            value = _number_from_env(value, spec.type)
        problem = spec.type_problem(value)
        if problem:
            problems.append(f"{name}: {problem}")
            continue
        values[name] = value
    if problems:
        raise SettingsError(preset_name, problems)
    secrets = tuple(str(values[n]) for n, s in specs.items() if s.secret and values.get(n) not in (None, ""))
    return Settings(values=values, secrets=secrets)


def _number_from_env(text: str, kind: str) -> Any:
    try:
        return int(text) if kind == "integer" else float(text)
    except ValueError:
        return text


#: Settings-file key for run options (rate_limit, max_attempts, deadline), not preset settings.
RESERVED = "relay"


@dataclass(frozen=True)
class RunOptions:
    """Run options from a settings file's ``relay:`` block; None keeps the preset's value.

    The block's schema is ``schemas/run-options.schema.json``."""

    rate: float | None = None
    burst: int | None = None
    max_attempts: int | None = None
    #: Seconds to keep retrying one request (the preset's ``delivery.deadline`` otherwise).
    deadline: float | None = None
    #: False sends one request per event even where the preset batches (None: batch).
    batch: bool | None = None


@cache
def _run_options_validator() -> Draft202012Validator:
    schema = load_json_schema(bundled.run_options_schema_path())
    # Validated as the ``relay`` member of the whole file, so errors point at /relay/...
    return Draft202012Validator({"type": "object", "properties": {RESERVED: schema}})


def split_run_options(
    raw: Mapping[str, Any], source: str = "settings", doc: SourceDoc | None = None
) -> tuple[dict[str, Any], RunOptions]:
    """Split the ``relay:`` run options off a settings mapping; the rest is the preset's settings.

    The block is checked against its schema: every problem at once, located in ``doc``
    when given, with "did you mean" for unknown keys (SettingsError naming ``source``).
    """
    rest = dict(raw)
    options = rest.pop(RESERVED, None)
    if options is None:
        return rest, RunOptions()
    doc = doc if doc is not None else SourceDoc(file=source, data=raw)
    problems = located_errors(_run_options_validator(), {RESERVED: options}, doc)
    if problems:
        problems.sort(key=lambda p: (p.location.line, p.location.col) if p.location else (0, 0))
        raise SettingsError("", [str(problem) for problem in problems], file=source)
    rate = options.get("rate_limit") or {}
    return rest, RunOptions(
        rate=rate.get("rate"),
        burst=rate.get("burst"),
        max_attempts=options.get("max_attempts"),
        deadline=options.get("deadline"),
        batch=options.get("batch"),
    )

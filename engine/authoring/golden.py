"""Golden cases: one YAML file per case holding the inputs and the expected outcome.

A case file looks like::

    description: what this case pins
    settings: {api_key: test-key, ...}     # fake values only
    event: {...}
    answers: {existing: {...}}             # optional: what `read` steps get back, by `as` name
    expected: {decision, reason, rule, requests}   # written by --update

A *batch case* gives ``events: [...]`` instead of ``event``: its expectation is what a
batched run does with them (``relay.runtime.batch_render``): each event's decision, and
every request in the order it is sent, bulk requests with the events they carry.

``--update`` rewrites only ``expected`` (ruamel round-trip, so comments and the
order of the inputs survive) and writes atomically.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..errors import GoldenError, PresetError, RelayError, RenderError
from ..preset.locate import display_path, golden_dir
from ..preset.model import CompiledPreset
from ..preset.source import load_yaml
from ..runtime.batch_render import render_batch
from ..runtime.render import render

__all__ = ["GoldenCase", "GoldenResult", "add_case", "discover_cases", "outcome_of", "run_case", "update_case"]

_MISSING = object()
#: Goldens render with a fixed clock (2023-11-14T22:13:20Z) unless a case sets ``now``.
GOLDEN_NOW = 1_700_000_000.0


@dataclass(frozen=True)
class GoldenCase:
    path: Path
    preset: str
    name: str
    settings: dict[str, Any]
    event: Any
    expected: Any  # _MISSING when the file has no expectation yet
    #: What `read` steps get back, by their `as` name (a name not given: nothing there).
    answers: dict[str, Any] = field(default_factory=dict)
    now: float = GOLDEN_NOW  # the clock, for presets that read `now` (timestamps, signatures)
    description: str = ""
    #: A batch case's events (``event`` is then the first): what a batched run sends for them.
    events: tuple[Any, ...] | None = None

    @property
    def batch(self) -> bool:
        return self.events is not None

    @property
    def all_events(self) -> tuple[Any, ...]:
        return self.events if self.events is not None else (self.event,)

    @property
    def has_expectation(self) -> bool:
        return self.expected is not _MISSING

    @property
    def id(self) -> str:
        return f"{self.preset}/{self.name}"


@dataclass(frozen=True)
class GoldenResult:
    case: GoldenCase
    actual: dict[str, Any]
    #: When rendering the case failed: the error, located at the preset node that failed.
    failure: RelayError | None = None

    @property
    def ok(self) -> bool:
        # Order-sensitive on purpose: key order is part of the bytes on the wire.
        return self.case.has_expectation and _canonical(self.case.expected) == _canonical(self.actual)

    def diff(self) -> str:
        if not self.case.has_expectation:
            return f"{self.case.path}: no `expected:` yet; run `relay golden --update {self.case.preset}` to record it"
        lead = ""
        if self.actual.get("decision") == "error":
            pointer = "/events" if self.case.batch else "/event"
            where = load_yaml(self.case.path).locate(pointer, key=True)
            lead = f"{where}: {pointer}: rendering this case failed: {self.actual['error']}\n"
            failure = self.failure
            if isinstance(failure, RenderError) and failure.location is not None:
                lead += f"{failure.location}: {failure.field}: the template that produced it\n"
            lead += (
                "  (hint: change the preset's template, or its request schema, so this event renders;"
                " or record the error on purpose with --update)\n"
            )
        before = _canonical(self.case.expected).splitlines(keepends=True)
        after = _canonical(self.actual).splitlines(keepends=True)
        return lead + "".join(difflib.unified_diff(before, after, f"{self.case.path} (expected)", "rendered now"))


def _canonical(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def load_case(path: Path, preset: str) -> GoldenCase:
    try:
        data = load_yaml(path).data
    except PresetError as exc:
        raise GoldenError(str(exc)) from None
    if not isinstance(data, dict) or ("event" in data) == ("events" in data):
        raise GoldenError(f"{path}: a golden case needs an `event:` (or, for a batch case, `events:`), not both")
    events = data.get("events")
    if events is not None and (not isinstance(events, list) or not events):
        raise GoldenError(f"{path}: `events:` is a list of events (a batch case)")
    allowed = ("description", "settings", "event", "events", "answers", "now", "expected")
    unknown = set(data) - set(allowed)
    if unknown:
        raise GoldenError(f"{path}: unknown keys {sorted(unknown)} (allowed: {', '.join(allowed)})")
    return GoldenCase(
        path,
        preset,
        path.stem,
        data.get("settings") or {},
        data["event"] if events is None else events[0],
        data.get("expected", _MISSING),
        dict(data.get("answers") or {}),
        float(data.get("now", GOLDEN_NOW)),
        str(data.get("description", "")),
        None if events is None else tuple(events),
    )


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_")


def discover_cases(preset: str, base: Path | None = None) -> list[GoldenCase]:
    paths = sorted(display_path(p) for p in golden_dir(preset, base).glob("*.yaml"))
    seen: dict[str, Path] = {}
    for path in paths:
        key = _normalized(path.stem)
        if key in seen:
            raise GoldenError(
                f"{path}:1:1: duplicate golden name: '{path.stem}' and '{seen[key].stem}' differ only "
                f"in case or -/_ (hint: rename one; names must be unique on every file system)"
            )
        seen[key] = path
    return [load_case(p, preset) for p in paths]


def add_case(
    preset: CompiledPreset, base: Path | None, name: str, event: Any, settings: dict[str, Any], description: str
) -> tuple[GoldenCase, GoldenResult]:
    """Record a new case from ``event`` with the current render as its expectation."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_]*", name):
        raise GoldenError(f"golden names are lower-case letters, digits and _ (got {name!r})")
    folder = golden_dir(preset.name, base)
    for existing in folder.glob("*.yaml"):
        if _normalized(existing.stem) == _normalized(name):
            raise GoldenError(
                f"{existing}:1:1: duplicate golden name '{name}' (hint: pick another --name, or edit "
                f"that case and run `relay golden --update {preset.name}`)"
            )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    yaml = _yaml()
    with open(path, "w", encoding="utf-8") as handle:
        yaml.dump({"description": description, "settings": settings, "event": event}, handle)
    case = load_case(path, preset.name)
    result = run_case(case, preset)
    update_case(case, result.actual)
    return load_case(path, preset.name), result


def outcome_of(
    preset: CompiledPreset,
    settings_raw: dict[str, Any],
    event: Any,
    answers: dict[str, Any] | None = None,
    now: float = GOLDEN_NOW,
) -> dict[str, Any]:
    """What a golden pins: the decision dict with every request, or the error an event raises.

    Goldens never read the environment, so a developer's real key cannot leak in.
    """
    return _outcome(preset, settings_raw, event, answers, now)[0]


def _outcome(
    preset: CompiledPreset, settings_raw: dict[str, Any], event: Any, answers: dict[str, Any] | None, now: float
) -> tuple[dict[str, Any], RelayError | None]:
    try:
        settings = preset.resolve_settings(settings_raw, environ={})
        return render(preset, event, settings, answers=answers, now=now).to_dict(), None
    except RelayError as exc:
        return {"decision": "error", "error": str(exc)}, exc


def run_case(case: GoldenCase, preset: CompiledPreset) -> GoldenResult:
    if case.events is not None:
        try:
            settings = preset.resolve_settings(case.settings, environ={})
            batched = render_batch(preset, case.events, settings, answers=case.answers, now=case.now)
            return GoldenResult(case, batched.to_dict())
        except RelayError as exc:
            return GoldenResult(case, {"decision": "error", "error": str(exc)}, exc)
    actual, failure = _outcome(preset, case.settings, case.event, case.answers, case.now)
    return GoldenResult(case, actual, failure)


def _represent_null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def update_case(case: GoldenCase, actual: dict[str, Any]) -> None:
    yaml = _yaml()
    with open(case.path, encoding="utf-8") as handle:
        doc = yaml.load(handle)
    doc["expected"] = actual
    fd, tmp = tempfile.mkstemp(dir=case.path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.dump(doc, handle)
        os.replace(tmp, case.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

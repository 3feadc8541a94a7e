"""What the page can ask for, as plain functions over a Workspace: check, preview, accept, save.

They work on the text in the editor, which may be unsaved or invalid. The HTTP
layer (``app.py``) only parses requests and turns a refusal (``saved``/``accepted``
false) into a 409.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authoring.golden import GoldenCase, run_case, update_case
from ..errors import EventError, InputError, PresetError, PresetErrors, RelayError
from ..preset.compiler import load_preset
from ..preset.locate import display_path
from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from .review import MISSING, masked_settings, review
from .workspace import EventChoice, PresetEntry, Workspace, digest

__all__ = ["MAX_TEXT", "Inputs", "accept_golden", "check_text", "describe", "inputs", "preview", "save_preset"]

#: Largest preset text studio compiles or saves; larger bodies are refused before parsing.
MAX_TEXT = 1_000_000


def _error_row(error: PresetError) -> dict[str, Any]:
    location = error.location
    return {
        "line": location.line if location else 1,
        "col": location.col if location else 1,
        "pointer": error.pointer or "/",
        "message": error.message,
        "hint": error.hint,
        "text": str(error),
    }


def check_text(entry: PresetEntry, text: str) -> tuple[CompiledPreset | None, list[dict[str, Any]]]:
    """Compile the editor's text as ``relay validate`` would the file: the preset, or every error."""
    if len(text) > MAX_TEXT:
        raise InputError(f"the preset text is over {MAX_TEXT} characters (studio's MAX_TEXT)")
    try:
        return load_preset(display_path(entry.path), text), []
    except PresetError as exc:
        return None, [_error_row(exc)]
    except PresetErrors as exc:
        return None, [_error_row(error) for error in exc.errors]


def describe(workspace: Workspace, entry: PresetEntry) -> dict[str, Any]:
    """A preset as the page opens it: its text, its fingerprint and what can be fed to it."""
    text = entry.path.read_text(encoding="utf-8")
    events = [{"id": c.id, "group": c.group, "label": c.label} for c in workspace.events(entry)]
    settings = [{"id": c.id, "label": c.label} for c in workspace.settings_choices(entry)]
    return {
        "name": entry.name,
        "file": str(display_path(entry.path)),
        "text": text,
        "digest": digest(text),
        "read_only": entry.read_only,
        "events": events,
        "settings": settings,
        "golden_folder": str(display_path(workspace.golden_folder(entry))),
    }


def _event(workspace: Workspace, entry: PresetEntry, source: dict[str, Any]) -> EventChoice:
    if "json" in source:
        text = str(source["json"])
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EventError(f"pasted event:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
        if not isinstance(event, dict):
            raise EventError("pasted event: an event must be a JSON object")
        return EventChoice("pasted", "Pasted", "pasted JSON", event)
    return workspace.event(entry, str(source.get("id", "")))


@dataclass(frozen=True)
class Inputs:
    """The event and settings one review uses."""

    choice: EventChoice
    raw_settings: dict[str, Any]
    settings: Settings
    #: The golden case's own inputs are used, so its clock and `answers` apply too.
    as_case: bool


def inputs(
    workspace: Workspace, entry: PresetEntry, preset: CompiledPreset, source: dict[str, Any], settings_id: Any
) -> Inputs:
    """A golden case's own settings (never the environment, as goldens do), else a settings file."""
    choice = _event(workspace, entry, source)
    if settings_id in (None, "", "case") and choice.case is not None:
        raw = choice.case.settings
        return Inputs(choice, raw, preset.resolve_settings(raw, environ={}), as_case=True)
    if settings_id in (None, "", "case"):
        options = workspace.settings_choices(entry)
        settings_id = options[0].id if options else None
    raw = workspace.settings(entry, str(settings_id)) if settings_id else {}
    return Inputs(choice, raw, preset.resolve_settings(raw), as_case=False)


def preview(
    workspace: Workspace, entry: PresetEntry, text: str, source: dict[str, Any], settings_id: Any
) -> dict[str, Any]:
    """Validation errors for ``text``, and, when it compiles, the review of the chosen event."""
    preset, errors = check_text(entry, text)
    out: dict[str, Any] = {"errors": errors, "review": None, "golden": None, "settings": [], "input_error": None}
    if preset is None:
        return out
    try:
        chosen = inputs(workspace, entry, preset, source, settings_id)
    except RelayError as exc:
        out["input_error"] = str(exc)
        return out
    out["settings"] = masked_settings(preset, chosen.raw_settings)
    case = chosen.choice.case if chosen.as_case else None
    now = case.now if case is not None else time.time()
    answers = case.answers if case is not None and case.answers else MISSING
    out["review"] = review(preset, chosen.choice.event, chosen.settings, now=now, answers=answers)
    if chosen.choice.case is not None:
        out["golden"] = _golden(chosen.choice.case, preset)
    return out


def _golden(case: GoldenCase, preset: CompiledPreset) -> dict[str, Any]:
    result = run_case(case, preset)
    return {
        "case": case.name,
        "file": str(display_path(case.path)),
        "description": case.description,
        "ok": result.ok,
        "has_expectation": case.has_expectation,
        "diff": "" if result.ok else result.diff(),
    }


def accept_golden(workspace: Workspace, entry: PresetEntry, text: str, case_name: str) -> dict[str, Any]:
    """Record the case's current render as its expectation, as ``relay golden --update`` does."""
    if entry.read_only:
        return {"accepted": False, "reason": "read_only", "message": entry.read_only}
    preset, errors = check_text(entry, text)
    if preset is None:
        message = "the preset has errors: fix them before accepting a golden"
        return {"accepted": False, "reason": "invalid", "message": message, "errors": errors}
    case = next((c for c in workspace.cases(entry) if c.name == case_name), None)
    if case is None:
        raise InputError(f"no golden case '{case_name}' for preset '{entry.name}'")
    result = run_case(case, preset)
    update_case(case, result.actual)
    on_disk = entry.path.read_text(encoding="utf-8")
    return {
        "accepted": True,
        "file": str(display_path(case.path)),
        "changed": not result.ok,
        "unsaved_preset": on_disk != text,
    }


def save_preset(
    entry: PresetEntry, text: str, base_digest: str, *, allow_invalid: bool = False, allow_changed: bool = False
) -> dict[str, Any]:
    """Write the editor's text over the preset file, exactly as typed (comments, order, spacing).

    Refused (``saved: false`` with a ``reason``) when the text has errors and the file on
    disk has none, or when the file changed on disk since the page read it; the page
    asks the author, then retries with the matching ``allow_*`` flag.
    """
    if entry.read_only:
        return {"saved": False, "reason": "read_only", "message": entry.read_only}
    _, errors = check_text(entry, text)
    on_disk = entry.path.read_text(encoding="utf-8")
    if digest(on_disk) != base_digest and not allow_changed:
        message = f"{display_path(entry.path)} changed on disk since it was opened"
        return {"saved": False, "reason": "changed", "message": message}
    if errors and not allow_invalid:
        _, disk_errors = check_text(entry, on_disk)
        if not disk_errors:
            count = len(errors)
            return {
                "saved": False,
                "reason": "invalid",
                "message": f"the preset has {count} error{'s' if count != 1 else ''}; "
                f"saving would replace the valid {display_path(entry.path)}",
                "errors": errors,
            }
    _write_atomically(entry.path, text)
    return {"saved": True, "file": str(display_path(entry.path)), "digest": digest(text), "errors": errors}


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

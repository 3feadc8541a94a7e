"""What studio works on: the presets of one directory, and the events and settings it offers.

The browser never names a file. Everything it can pick (a preset, a golden case,
an example, a dead-letter line, a settings file) is found here on the server and
handed out as an opaque id, so a request from the page can only reach what this
module listed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import bundled
from ..authoring.golden import GoldenCase, discover_cases
from ..errors import GoldenError, InputError
from ..preset.locate import PRESET_FILE, golden_dir, preset_dirs, presets_dir, presets_root_of
from ..preset.settings import load_settings_file

__all__ = ["EventChoice", "PresetEntry", "SettingsChoice", "Workspace", "digest"]

_SETTINGS_SUFFIXES = (".settings.yaml", ".settings.yml", ".settings.json")


def digest(text: str) -> str:
    """A short fingerprint of a file's text: Save refuses to overwrite a file changed since it was read."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PresetEntry:
    name: str
    path: Path
    #: Why the preset may not be written ("" when it may).
    read_only: str = ""


@dataclass(frozen=True)
class EventChoice:
    id: str
    group: str
    label: str
    event: Any = field(repr=False)
    case: GoldenCase | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SettingsChoice:
    id: str
    label: str
    path: Path


class Workspace:
    """One presets directory plus the extra files the author named on the command line."""

    def __init__(
        self,
        presets_root: Path | None = None,
        *,
        settings_files: tuple[Path, ...] = (),
        dead_letters: tuple[Path, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.root = presets_dir(presets_root)
        self.user_root = presets_root  # None: the bundled presets (goldens live in the package)
        self.cwd = cwd or Path.cwd()
        self.settings_files = settings_files
        self.dead_letters = dead_letters

    # -- presets ------------------------------------------------------------------

    def presets(self) -> list[PresetEntry]:
        return [self._entry(folder) for folder in preset_dirs(self.root)]

    def preset(self, name: str) -> PresetEntry:
        for entry in self.presets():
            if entry.name == name:
                return entry
        raise InputError(f"no preset '{name}' under {self.root}")

    def _entry(self, folder: Path) -> PresetEntry:
        path = folder / PRESET_FILE
        reason = ""
        if _installed_bundle(self.root):
            reason = "the bundled presets of an installed relay are read-only: copy one and use --presets DIR"
        elif not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
            reason = f"{path} is not writable"
        return PresetEntry(folder.name, path, reason)

    def golden_base(self, entry: PresetEntry) -> Path | None:
        return presets_root_of(entry.path)

    # -- events -------------------------------------------------------------------

    def cases(self, entry: PresetEntry) -> list[GoldenCase]:
        try:
            return discover_cases(entry.name, self.golden_base(entry))
        except GoldenError:
            return []  # a broken case file is reported by `relay golden`; studio lists the rest

    def events(self, entry: PresetEntry) -> list[EventChoice]:
        """Golden cases, then examples (this preset's first), then dead-lettered events."""
        choices = [
            EventChoice(f"golden:{case.name}", "Golden cases", case.name, case.event, case)
            for case in self.cases(entry)
            if not case.batch  # a batch case pins several events at once: `relay golden` shows it
        ]
        examples: list[EventChoice] = []
        for folder in self._example_dirs(entry):
            for path in sorted(folder.glob("*.json")):
                if path.name.endswith(_SETTINGS_SUFFIXES):
                    continue
                try:
                    event = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(event, dict):
                    examples.append(EventChoice(f"example:{path}", "Examples", path.name, event))
            for path in sorted(folder.glob("*.ndjson")):
                examples.extend(self._ndjson(path, "Examples", f"example:{path}"))
        examples.sort(key=lambda choice: not choice.label.startswith(entry.name))
        dead = [
            choice
            for index, path in enumerate(self._dead_letter_files())
            for choice in self._dead_letter(path, index, entry.name)
        ]
        return choices + examples + dead

    def event(self, entry: PresetEntry, choice_id: str) -> EventChoice:
        for choice in self.events(entry):
            if choice.id == choice_id:
                return choice
        raise InputError(f"no event {choice_id!r} for preset '{entry.name}'")

    def _example_dirs(self, entry: PresetEntry) -> list[Path]:
        candidates = [bundled.examples_dir(), self.cwd / "examples", entry.path.parent / "examples"]
        unique: list[Path] = []
        for folder in candidates:
            if folder.is_dir() and all(folder.resolve() != seen.resolve() for seen in unique):
                unique.append(folder)
        return unique

    def _ndjson(self, path: Path, group: str, prefix: str) -> list[EventChoice]:
        out = []
        for number, event in _lines(path):
            if isinstance(event, dict):
                what = " ".join(str(event.get(k)) for k in ("type", "event") if event.get(k))
                out.append(EventChoice(f"{prefix}#{number}", group, f"{path.name} line {number}: {what}", event))
        return out

    def _dead_letter_files(self) -> list[Path]:
        found = sorted((self.cwd / "relay-out").glob("*.deadletter.ndjson"))
        return [*self.dead_letters, *(p for p in found if p not in self.dead_letters)]

    def _dead_letter(self, path: Path, index: int, preset: str) -> list[EventChoice]:
        out = []
        for number, entry in _lines(path):
            if not isinstance(entry, dict) or entry.get("preset") not in (preset, None):
                continue
            event = entry.get("event")
            if isinstance(event, str):  # a line that was not JSON is dead-lettered as its text
                try:
                    event = json.loads(event)
                except ValueError:
                    continue
            status = entry.get("status")
            label = f"{path.name} line {number}" + (f": HTTP {status}" if status is not None else "")
            out.append(EventChoice(f"deadletter:{index}#{number}", "Dead letters", label, event))
        return out

    # -- settings -----------------------------------------------------------------

    def settings_choices(self, entry: PresetEntry) -> list[SettingsChoice]:
        """Settings files for this preset: named on the command line, or ``<preset>.settings.*``
        beside the examples, the presets or the working directory."""
        known = {e.name for e in self.presets()}
        paths: list[Path] = list(self.settings_files)
        for folder in [*self._example_dirs(entry), self.cwd, self.root, entry.path.parent]:
            for path in sorted(folder.glob("*.settings.*")) if folder.is_dir() else []:
                owner = path.name.split(".", 1)[0]
                if path.name.endswith(_SETTINGS_SUFFIXES) and (owner == entry.name or owner not in known):
                    paths.append(path)
        unique: list[Path] = []
        for path in paths:
            if all(path.resolve() != seen.resolve() for seen in unique):
                unique.append(path)
        # The first choice is the default: files named on the command line, then the preset's own.
        unique.sort(key=lambda path: (path not in self.settings_files, path.name.split(".", 1)[0] != entry.name))
        return [SettingsChoice(f"file:{path}", _shown(path, self.cwd), path) for path in unique]

    def settings(self, entry: PresetEntry, choice_id: str) -> dict[str, Any]:
        for choice in self.settings_choices(entry):
            if choice.id == choice_id:
                return load_settings_file(choice.path)
        raise InputError(f"no settings {choice_id!r} for preset '{entry.name}'")

    def golden_folder(self, entry: PresetEntry) -> Path:
        return golden_dir(entry.name, self.golden_base(entry))


def _lines(path: Path) -> list[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except ValueError:
                continue
    return out


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path) if not _inside(path, bundled.examples_dir()) else f"(bundled) {path.name}"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _installed_bundle(root: Path) -> bool:
    """The bundled presets of a wheel install (not a checkout, whose presets/ is the bundle)."""
    if root.resolve() != bundled.presets_dir().resolve():
        return False
    return not (root.resolve().parent / "pyproject.toml").is_file()

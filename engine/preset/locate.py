"""Finding presets and their goldens: the bundled ones, or a directory of the user's own.

``--presets DIR`` (or ``$RELAY_PRESETS``) names a user's directory, laid out as
``DIR/<preset>/preset.yaml`` with cases in ``DIR/<preset>/golden/``. Without it,
relay uses the presets it ships with (``relay.bundled``), whose goldens live in
the repository's ``tests/golden/<preset>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import bundled
from ..errors import PresetNotFound

__all__ = [
    "PRESET_FILE",
    "display_path",
    "golden_dir",
    "preset_dirs",
    "presets_dir",
    "presets_root_of",
    "resolve_preset",
]

PRESET_FILE = "preset.yaml"


def presets_dir(override: str | Path | None = None) -> Path:
    """``--presets DIR``, else ``$RELAY_PRESETS``, else the bundled presets."""
    chosen = override or os.environ.get("RELAY_PRESETS")
    return Path(chosen) if chosen else bundled.presets_dir()


def preset_dirs(base: Path | None = None) -> list[Path]:
    base = base or presets_dir()
    return sorted(p.parent for p in base.glob(f"*/{PRESET_FILE}"))


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it: shorter messages."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def resolve_preset(name_or_path: str, base: Path | None = None) -> Path:
    """A preset name under the presets directory, or a path to a folder or file."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return display_path(candidate)
    if (candidate / PRESET_FILE).is_file():
        return display_path(candidate / PRESET_FILE)
    by_name = (base or presets_dir()) / name_or_path / PRESET_FILE
    if by_name.is_file():
        return display_path(by_name)
    known = ", ".join(p.name for p in preset_dirs(base)) or "none"
    raise PresetNotFound(f"no preset '{name_or_path}' (known presets: {known})")


def _is_bundled(root: Path) -> bool:
    return root.resolve() == bundled.presets_dir().resolve()


def presets_root_of(preset_file: Path) -> Path | None:
    """The presets directory a preset file sits in; None for the bundled one."""
    root = Path(preset_file).resolve().parent.parent
    return None if _is_bundled(root) else root


def golden_dir(preset_name: str, base: Path | None = None) -> Path:
    """Goldens of bundled presets live in tests/golden/<name>; others beside the preset."""
    if base is None or _is_bundled(Path(base)):
        return bundled.goldens_dir() / preset_name
    return Path(base) / preset_name / "golden"

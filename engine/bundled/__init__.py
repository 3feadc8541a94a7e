"""The data relay ships with: bundled presets, their schemas, goldens and the demo.

In the repository these live at the top level (``presets/``, ``schemas/``,
``tests/golden/``, ``examples/``); ``pyproject.toml`` maps each to a package
under ``relay.bundled`` so the wheel carries them. They are found through
``importlib.resources`` only, so an installed relay and a checkout behave alike.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

__all__ = [
    "examples_dir",
    "goldens_dir",
    "preset_schema_path",
    "presets_dir",
    "run_options_schema_path",
    "schemas_dir",
    "service_schema_path",
]


@cache
def _folder(package: str) -> Path:
    # Each data folder is a regular package on the file system (wheel or editable
    # install), so its Traversable is a real path that can be globbed and written.
    return Path(str(files(package)))


def presets_dir() -> Path:
    """``presets/``: one folder per bundled preset."""
    return _folder("relay.bundled.presets")


def schemas_dir() -> Path:
    """``schemas/``: the preset schema and each preset's request schemas."""
    return _folder("relay.bundled.schemas")


def goldens_dir() -> Path:
    """``tests/golden/``: the bundled presets' golden cases, one folder per preset."""
    return _folder("relay.bundled.goldens")


def examples_dir() -> Path:
    """``examples/``: the demo's sample stream and configuration."""
    return _folder("relay.bundled.examples")


def preset_schema_path() -> Path:
    return schemas_dir() / "preset.schema.json"


def run_options_schema_path() -> Path:
    """The schema of a settings file's ``relay:`` block (run options)."""
    return schemas_dir() / "run-options.schema.json"


def service_schema_path() -> Path:
    """The schema of a service config (``relay.yaml``: ``relay serve`` and ``relay worker``)."""
    return schemas_dir() / "service.schema.json"

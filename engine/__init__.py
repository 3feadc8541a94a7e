"""relay: a declarative delivery engine for first-party analytics events.

The public API::

    preset = load_preset("presets/<name>")          # a folder holding preset.yaml
    settings = preset.resolve_settings({"api_key": "..."})
    decision = preset.render(event, settings)   # pure: no I/O
"""

from __future__ import annotations

from .compiler import compile_preset, load_preset
from .decision import Decision, Request, Trace
from .errors import (
    DeliveryError,
    EventError,
    GoldenError,
    Location,
    PresetError,
    PresetErrors,
    RelayError,
    RenderError,
    RequestSchemaError,
    SettingsError,
)
from .model import CompiledPreset
from .render import render
from .settings import Settings, load_settings_file

__all__ = [
    "CompiledPreset",
    "Decision",
    "DeliveryError",
    "EventError",
    "GoldenError",
    "Location",
    "PresetError",
    "PresetErrors",
    "RelayError",
    "RenderError",
    "Request",
    "RequestSchemaError",
    "Settings",
    "SettingsError",
    "Trace",
    "compile_preset",
    "load_preset",
    "load_settings_file",
    "render",
]

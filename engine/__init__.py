"""relay: a declarative delivery engine for first-party analytics events.

The public API::

    import relay

    preset = relay.load_preset("my-presets/acme")        # a folder, or the name of a bundled preset
    settings = preset.resolve_settings({"token": "...", "audience": "main"})
    decision = relay.render(preset, event, settings)     # pure: the request it would send, or the drop
    print(decision.to_dict())

    plan = relay.decide(preset, event, settings)         # pure, no clock: send or drop, and why
    for step in preset.steps:                            # each request of the event, in order
        request = relay.build(preset, plan, step, now=time.time())   # the exact bytes (None: skipped)

    with open("events.ndjson", "rb") as stream:          # deliver a stream, as `relay send` does
        stats = relay.deliver_stream(preset, settings, stream, dead_letter_path=Path("dead.ndjson"))

Layers, each importing only those below it::

    cli                         the command line (thin)
    demo  studio                the main job on local fakes | the authoring page (relay studio)
    delivery  authoring         transport, retries, journal, streams | goldens, docs, scaffold
    runtime                     decide -> Plan, build -> Request
    preset                      YAML source, schema, settings, compiler, the compiled model
    expr                        the sandboxed expression language (JMESPath paths, Jinja)
    errors  bundled             the exception tree | the data relay ships with
"""

from __future__ import annotations

from pathlib import Path

from .delivery.deliver import Deliverer, Outcome
from .delivery.runner import StreamStats
from .delivery.stream import deliver_stream
from .delivery.transport import HTTPTransport, MockTransport, RedirectTransport, Response, Transport
from .errors import (
    DeliveryError,
    EventError,
    GoldenError,
    InputError,
    Location,
    PresetError,
    PresetErrors,
    PresetNotFound,
    RelayError,
    RenderError,
    RequestSchemaError,
    SettingsError,
    TransportError,
)
from .preset import compiler as _compiler
from .preset.compiler import compile_preset
from .preset.locate import resolve_preset
from .preset.model import CompiledPreset
from .preset.settings import RunOptions, Settings, load_settings_file
from .runtime.build import build
from .runtime.decide import decide
from .runtime.decision import Decision, Plan, Request, Trace
from .runtime.render import render

__all__ = [
    "CompiledPreset",
    "Decision",
    "Deliverer",
    "DeliveryError",
    "EventError",
    "GoldenError",
    "HTTPTransport",
    "InputError",
    "Location",
    "MockTransport",
    "Outcome",
    "Plan",
    "PresetError",
    "PresetErrors",
    "PresetNotFound",
    "RedirectTransport",
    "RelayError",
    "RenderError",
    "Request",
    "RequestSchemaError",
    "Response",
    "RunOptions",
    "Settings",
    "SettingsError",
    "StreamStats",
    "Trace",
    "Transport",
    "TransportError",
    "build",
    "compile_preset",
    "decide",
    "deliver_stream",
    "load_preset",
    "load_settings_file",
    "render",
]


def load_preset(name_or_path: str | Path, presets: str | Path | None = None) -> CompiledPreset:
    """Load, validate and compile a preset: a path to a folder or ``preset.yaml``, or the
    name of one under ``presets`` (default: ``$RELAY_PRESETS``, else the bundled presets).

    Raises PresetErrors listing every problem, each at its ``file:line:col``.
    """
    from .preset.locate import presets_dir

    path = Path(name_or_path)
    if path.exists():  # a path is used as given, so errors name the file the way the caller did
        return _compiler.load_preset(path)
    return _compiler.load_preset(resolve_preset(str(name_or_path), presets_dir(presets)))

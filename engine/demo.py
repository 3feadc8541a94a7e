"""The main job on embedded defaults: local fake vendors, the sample stream, every destination.

Driven by a demo config (the bundled ``examples/demo.yaml`` by default): which
presets, which fake server stands in for which real API host, and the settings
to use. Nothing here names a vendor; fakes are looked up in ``relay.fakes.FAKES``.
It prints nothing: each destination's report goes to ``on_destination``.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bundled
from .delivery.checks import CheckResult, check_preset
from .delivery.runner import StreamStats
from .delivery.stream import deliver_stream
from .preset.compiler import load_preset
from .preset.locate import presets_dir, resolve_preset
from .preset.settings import split_run_options
from .preset.source import load_yaml

__all__ = ["DestinationReport", "default_demo_config", "fake_registry", "run_demo"]


@dataclass
class DestinationReport:
    preset: str
    title: str
    fake_url: str
    events_file: str
    checks: list[CheckResult]
    stats: StreamStats
    #: The fake's state as a table: title, column names, rows.
    state: tuple[str, list[str], list[list[Any]]]


def fake_registry() -> Any:
    """The ``relay.fakes`` module (``FAKES``, ``FakeServer``, ``RateLimit``).

    Imported by name at run time: the fakes are test doubles that live outside
    ``engine/`` (they name vendors), mapped into the package by pyproject.toml.
    """
    return importlib.import_module("relay.fakes")


def default_demo_config() -> Path:
    return bundled.examples_dir() / "demo.yaml"


def run_demo(
    config_path: Path,
    *,
    presets_root: Path | None = None,
    concurrency: int = 4,
    on_destination: Callable[[DestinationReport], None] | None = None,
) -> list[DestinationReport]:
    """Start each destination's fake, run its checks, send the sample stream through it."""
    fakes = fake_registry()
    config = load_yaml(config_path).data
    events_path = (config_path.parent / config["events"]).resolve()
    reports = []
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as scratch:
        for destination in config["destinations"]:
            vendor = fakes.FAKES[destination["fake"]]()
            fake_config = dict(destination.get("fake_config", {}))
            limit = fake_config.pop("rate_limit", None)  # requests per second, to show retries
            vendor.configure(fake_config)
            with fakes.FakeServer(vendor, rate_limit=fakes.RateLimit(limit) if limit else None) as server:
                preset = load_preset(resolve_preset(destination["preset"], presets_dir(presets_root)))
                raw, options = split_run_options(destination["settings"], str(config_path))
                settings = preset.resolve_settings(raw)
                redirects = {destination["redirect"]: server.url}
                checks = check_preset(preset, settings, fix=bool(destination.get("fix", False)), redirects=redirects)
                with open(events_path, "rb") as source:
                    stats = deliver_stream(
                        preset,
                        settings,
                        source,
                        options=options,
                        concurrency=concurrency,
                        journal_path=Path(scratch) / f"{preset.name}.sqlite",
                        dead_letter_path=Path(scratch) / f"{preset.name}.deadletter.ndjson",
                        redirects=redirects,
                    )
                report = DestinationReport(
                    preset=preset.name,
                    title=str(preset.metadata["title"]),
                    fake_url=server.url,
                    events_file=events_path.name,
                    checks=checks,
                    stats=stats,
                    state=vendor.table(),
                )
            reports.append(report)
            if on_destination is not None:
                on_destination(report)
    return reports

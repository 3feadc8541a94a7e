"""The service config, ``relay.yaml``: validated like a preset, every error located, all at once.

It names the sources (write keys), the destinations (a preset, its settings, an
optional filter), the queue (embedded SQLite, or Kafka), the port and the limits.
Secrets (write keys, vendor keys, Kafka passwords) come from the environment;
they are held only in memory and never appear in an error, a log line or a metric.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .. import bundled
from ..errors import PresetError, PresetErrors, PresetNotFound, SettingsError, TemplateError
from ..expr.templates import compile_expression
from ..preset.compiler import load_preset
from ..preset.locate import presets_dir, resolve_preset
from ..preset.model import CompiledPreset
from ..preset.schema import load_json_schema, schema_errors
from ..preset.settings import RunOptions, Settings, load_settings_file, split_run_options
from ..preset.source import SourceDoc, load_yaml

__all__ = ["Destination", "KafkaSettings", "Limits", "ServiceConfig", "Source", "load_config"]

#: Segment's limits: 32 KB per event, 500 KB per batch.
EVENT_BYTES = 32 * 1024
BATCH_BYTES = 500 * 1000


@dataclass(frozen=True)
class Limits:
    event_bytes: int = EVENT_BYTES
    batch_bytes: int = BATCH_BYTES
    read_timeout: float = 10.0


@dataclass(frozen=True)
class Source:
    name: str
    write_key: str = field(repr=False)


@dataclass
class Destination:
    name: str
    preset: CompiledPreset
    settings: Settings = field(repr=False)
    options: RunOptions
    filter: Callable[[Mapping[str, Any]], Any] | None = None
    concurrency: int = 4
    stop_retry: float = 300.0
    redirects: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic: str = "relay-events"
    group: str = "relay"
    max_in_flight: int = 1000
    #: librdkafka settings for every client; may hold secrets (sasl.password): never logged.
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    def topic_for(self, destination: str) -> str:
        return f"{self.topic}.{destination}"

    def group_for(self, destination: str) -> str:
        return f"{self.group}.{destination}"


@dataclass
class ServiceConfig:
    path: Path
    data_dir: Path
    sources: list[Source]
    destinations: list[Destination]
    host: str = "127.0.0.1"
    port: int = 8080
    log: str = "text"
    limits: Limits = field(default_factory=Limits)
    shutdown_timeout: float = 5.0
    max_connections: int = 1000
    dedup_window: float = 86400.0
    retention: float = 0.0
    kafka: KafkaSettings | None = None
    worker_host: str = "127.0.0.1"
    worker_port: int = 9090
    secrets: tuple[str, ...] = field(default=(), repr=False)


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_json_schema(bundled.service_schema_path()))


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Load and check ``relay.yaml``: raises PresetErrors with every problem, each at its line."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        doc = load_yaml(path)
    except PresetError as exc:
        raise PresetErrors([exc]) from None
    problems = schema_errors(doc, _validator())
    if problems:
        raise PresetErrors(problems)
    return _Builder(doc, path, environ).build()


class _Builder:
    """Turns a schema-valid document into a ServiceConfig, collecting every further problem."""

    def __init__(self, doc: SourceDoc, path: Path, environ: Mapping[str, str]) -> None:
        self.doc, self.path, self.environ = doc, path, environ
        self.base = path.parent
        self.problems: list[PresetError] = []
        self.secrets: list[str] = []

    def error(self, pointer: str, message: str, hint: str | None = None) -> None:
        self.problems.append(self.doc.error(pointer, message, hint=hint))

    def secret(self, pointer: str, value: Any) -> str:
        if isinstance(value, dict):
            found = self.environ.get(value["env"])
            if not found:
                self.error(pointer, f"environment variable {value['env']} is not set")
                return ""
            value = found
        self.secrets.append(str(value))
        return str(value)

    def build(self) -> ServiceConfig:
        data: dict[str, Any] = self.doc.data
        server = data.get("server", {})
        limits = server.get("limits", {})
        sources = self._sources(data["sources"])
        destinations = self._destinations(data["destinations"])
        queue = data.get("queue", {"type": "embedded"})
        kafka = self._kafka(queue) if queue["type"] == "kafka" else None
        worker = data.get("worker", {})
        if self.problems:
            raise PresetErrors(self.problems)
        return ServiceConfig(
            path=self.path,
            data_dir=(self.base / data.get("data_dir", "relay-data")).resolve(),
            sources=sources,
            destinations=destinations,
            host=server.get("host", "127.0.0.1"),
            port=server.get("port", 8080),
            log=server.get("log", "text"),
            limits=Limits(
                event_bytes=limits.get("event_bytes", EVENT_BYTES),
                batch_bytes=limits.get("batch_bytes", BATCH_BYTES),
                read_timeout=float(server.get("read_timeout", 10.0)),
            ),
            shutdown_timeout=float(server.get("shutdown_timeout", 5.0)),
            max_connections=server.get("max_connections", 1000),
            dedup_window=float(server.get("dedup_window", 86400.0)),
            retention=float(queue.get("retention", 0.0)),
            kafka=kafka,
            worker_host=worker.get("host", "127.0.0.1"),
            worker_port=worker.get("port", 9090),
            secrets=tuple(s for s in self.secrets if s),
        )

    def _sources(self, items: list[dict[str, Any]]) -> list[Source]:
        sources: list[Source] = []
        names: set[str] = set()
        keys: dict[str, str] = {}
        for index, item in enumerate(items):
            pointer = f"/sources/{index}"
            if item["name"] in names:
                self.error(f"{pointer}/name", f"a second source named '{item['name']}'", "names must be unique")
            names.add(item["name"])
            key = self.secret(f"{pointer}/write_key", item["write_key"])
            if key and key in keys:
                self.error(f"{pointer}/write_key", f"the same write key as source '{keys[key]}'")
            keys[key] = item["name"]
            sources.append(Source(item["name"], key))
        return sources

    def _destinations(self, items: list[dict[str, Any]]) -> list[Destination]:
        out, names = [], set()
        for index, item in enumerate(items):
            pointer = f"/destinations/{index}"
            if item["name"] in names:
                self.error(f"{pointer}/name", f"a second destination named '{item['name']}'", "names must be unique")
            names.add(item["name"])
            destination = self._destination(pointer, item)
            if destination is not None:
                out.append(destination)
        return out

    def _destination(self, pointer: str, item: dict[str, Any]) -> Destination | None:
        preset = self._preset(f"{pointer}/preset", item["preset"])
        raw_settings = self._raw_settings(f"{pointer}/settings", item["settings"])
        flt = self._filter(f"{pointer}/filter", item.get("filter"))
        if preset is None or raw_settings is None:
            return None
        try:
            raw, options = split_run_options(raw_settings, f"{pointer}/settings")
            settings = preset.resolve_settings(raw, environ=self.environ)
        except SettingsError as exc:
            for problem in exc.problems:
                self.error(f"{pointer}/settings", f"settings for preset '{preset.name}': {problem}")
            return None
        self.secrets.extend(settings.secrets)
        return Destination(
            name=item["name"],
            preset=preset,
            settings=settings,
            options=options,
            filter=flt,
            concurrency=item.get("concurrency", 4),
            stop_retry=float(item.get("stop_retry", 300.0)),
            redirects=dict(item.get("redirect", {})),
        )

    def _preset(self, pointer: str, name: str) -> CompiledPreset | None:
        local = self.base / name
        try:
            found = local if local.exists() else resolve_preset(name, presets_dir(None))
            return load_preset(found)
        except PresetNotFound as exc:
            self.error(pointer, str(exc))
        except PresetErrors as exc:
            self.error(pointer, f"the preset has {len(exc.errors)} error(s); run `relay validate {name}`")
        return None

    def _raw_settings(self, pointer: str, value: Any) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        try:
            return load_settings_file(self.base / value)
        except SettingsError as exc:
            for problem in exc.problems:
                self.error(pointer, problem)
        return None

    def _filter(self, pointer: str, expression: str | None) -> Callable[[Mapping[str, Any]], Any] | None:
        if expression is None:
            return None
        try:
            return compile_expression(expression, {"event": None})
        except TemplateError as exc:
            self.error(pointer, f"the filter does not compile: {exc.message}", exc.hint)
            return None

    def _kafka(self, queue: dict[str, Any]) -> KafkaSettings:
        config = {
            name: self.secret(f"/queue/config/{name}", value) if isinstance(value, dict) else value
            for name, value in queue.get("config", {}).items()
        }
        return KafkaSettings(
            bootstrap_servers=queue["bootstrap_servers"],
            topic=queue.get("topic", "relay-events"),
            group=queue.get("group", "relay"),
            max_in_flight=queue.get("max_in_flight", 1000),
            config=config,
        )

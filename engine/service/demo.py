"""``relay demo --serve``: the service on local fakes, fed by Segment's own SDK.

It starts each fake vendor of the demo config, runs the destination's checks,
writes a service config for them, starts the collector with the embedded queue,
posts the sample stream with ``segment-analytics-python`` exactly as a site's
backend would, waits until every destination has an outcome for every event, and
reports per destination. Nothing here names a vendor: fakes come from ``relay.fakes``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..delivery.checks import CheckResult, check_preset
from ..errors import InputError
from ..preset.compiler import load_preset
from ..preset.locate import presets_dir, resolve_preset
from ..preset.settings import split_run_options
from ..preset.source import load_yaml
from .app import Service, listen, serve_app
from .config import load_config

__all__ = ["ServedReport", "post_with_sdk", "run_service_demo"]

OUTCOMES = ("delivered", "dropped", "failed", "parked")


@dataclass
class ServedReport:
    destination: str
    title: str
    fake_url: str
    checks: list[CheckResult]
    outcomes: dict[str, int]
    retries: int
    state: tuple[str, list[str], list[list[Any]]] = field(default=("", [], []))


def post_with_sdk(client: Any, event: dict[str, Any]) -> None:
    """Send one Segment-spec event through an analytics-python style client (Segment's or RudderStack's)."""
    common = {
        "context": event.get("context"),
        "integrations": event.get("integrations"),
        "message_id": event.get("messageId"),
        "timestamp": datetime.fromisoformat(event["timestamp"]) if event.get("timestamp") else None,
    }
    user = {"user_id": event.get("userId"), "anonymous_id": event.get("anonymousId")}
    kind = event.get("type")
    if kind == "identify":
        client.identify(traits=event.get("traits"), **user, **common)
    elif kind == "track":
        client.track(event=event.get("event"), properties=event.get("properties"), **user, **common)
    elif kind in ("page", "screen"):
        getattr(client, kind)(name=event.get("name"), properties=event.get("properties"), **user, **common)
    elif kind == "group":
        client.group(group_id=event.get("groupId"), traits=event.get("traits"), **user, **common)
    elif kind == "alias":
        client.alias(previous_id=event.get("previousId"), user_id=event.get("userId"), **common)
    else:
        raise InputError(f"cannot post an event of type {kind!r} with the SDK")


def _segment_client(write_key: str, url: str, errors: list[str]) -> Any:
    try:
        analytics = importlib.import_module("segment.analytics")
    except ImportError:
        raise InputError(
            "relay demo --serve posts with Segment's SDK: pip install 'relay[demo]' (segment-analytics-python)"
        ) from None
    return analytics.Client(
        write_key, host=url, sync_mode=True, on_error=lambda error, _batch: errors.append(str(error))
    )


@contextlib.contextmanager
def running(service: Service) -> Iterator[str]:
    """Serve ``service`` on a free local port in a thread; stop it (cleanly) on the way out."""
    sock = listen("127.0.0.1", 0)
    urls: list[str] = []
    ready = threading.Event()

    def announce(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(target=serve_app, args=(service, sock), kwargs={"announce": announce}, daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield urls[0]
    finally:
        service.begin_shutdown()
        thread.join(60)


def run_service_demo(
    demo_config: Path,
    *,
    presets_root: Path | None = None,
    on_message: Callable[[str], None] | None = None,
    timeout: float = 120.0,
) -> list[ServedReport]:
    """Run the service on the demo's fakes, post the sample stream with the Segment SDK, report."""
    say = on_message or (lambda _text: None)
    fakes = importlib.import_module("relay.fakes")
    demo = load_yaml(demo_config).data
    events = [
        json.loads(line)
        for line in (demo_config.parent / demo["events"]).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    write_key = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="relay-serve-demo-") as scratch, contextlib.ExitStack() as stack:
        destinations, vendors, reports = [], {}, {}
        for entry in demo["destinations"]:
            vendor = fakes.FAKES[entry["fake"]]()
            fake_config = dict(entry.get("fake_config", {}))
            limit = fake_config.pop("rate_limit", None)
            vendor.configure(fake_config)
            server = stack.enter_context(fakes.FakeServer(vendor, rate_limit=fakes.RateLimit(limit) if limit else None))
            preset = load_preset(resolve_preset(entry["preset"], presets_dir(presets_root)))
            raw, _options = split_run_options(entry["settings"], str(demo_config))
            redirects = {entry["redirect"]: server.url}
            checks = check_preset(
                preset, preset.resolve_settings(raw), fix=bool(entry.get("fix", False)), redirects=redirects
            )
            name = preset.name
            vendors[name] = vendor
            reports[name] = ServedReport(name, str(preset.metadata["title"]), server.url, checks, {}, 0)
            destinations.append(
                {"name": name, "preset": str(preset.path), "settings": entry["settings"], "redirect": redirects,
                 "concurrency": 4}
            )  # fmt: skip
        config_path = Path(scratch) / "relay.yaml"
        config_path.write_text(
            json.dumps(
                {
                    "data_dir": str(Path(scratch) / "data"),
                    "server": {"port": 0, "log": "off"},
                    "sources": [{"name": "demo", "write_key": write_key}],
                    "destinations": destinations,
                },
                indent=2,
            )
        )
        service = Service(load_config(config_path))
        with running(service) as url:
            say(f"collector on {url}; posting {len(events)} events with segment-analytics-python")
            errors: list[str] = []
            client = _segment_client(write_key, url, errors)
            for event in events:
                post_with_sdk(client, event)
            client.flush()
            if errors:
                raise InputError(f"the collector refused the SDK's events: {errors[0]}")
            _wait_for_outcomes(service, len(events), timeout)
        for runner in service.runners:
            report = reports[runner.name]
            report.outcomes = {o: int(_count(service, runner.name, o)) for o in OUTCOMES}
            report.retries = int(runner.totals["retries"])
            report.state = vendors[runner.name].table()
        return list(reports.values())


def _count(service: Service, destination: str, outcome: str) -> float:
    return service.metrics.sample("relay_events_total", {"destination": destination, "outcome": outcome})


def _wait_for_outcomes(service: Service, count: int, timeout: float) -> None:
    done = threading.Event()

    def finished() -> bool:
        return all(sum(_count(service, r.name, o) for o in OUTCOMES) >= count for r in service.runners)

    deadline = timeout
    while not finished() and deadline > 0:
        done.wait(0.1)
        deadline -= 0.1

"""Send to fake: deliver one event to a local fake of the preset and tell what happened.

Each preset gets one fake for the whole studio run (so a second send finds what
the first one wrote, as a real account would): the one ``relay fake`` serves
(the preset's own fake, or a recording fake built from its request schemas),
readied by the preset's ``relay check --fix`` where it declares fixes. Delivery is relay's own
``Deliverer`` with the preset's retry policy; its waits are recorded rather
than slept, so the page answers at once and still shows every wait.
"""

from __future__ import annotations

import importlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..delivery.checks import check_preset
from ..delivery.deliver import Deliverer
from ..delivery.retry import parse_body
from ..delivery.transport import HTTPTransport, RedirectTransport, Response, Transport
from ..errors import InputError, TransportError
from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from ..runtime.decision import Request, redact
from .review import secret_forms

__all__ = ["FAULTS", "STUDIO_ATTEMPTS", "FakeHosts", "fake_registry"]

#: Misbehaviours the author can ask the fake for, to see relay's answer to each.
FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("Answer as the fake would", {}),
    "503-once": ("503 on the first attempt", {"kind": "status", "status": 503, "times": 1}),
    "503-always": ("503 on every attempt", {"kind": "status", "status": 503, "times": 1000}),
    "429-once": ("429 on the first attempt", {"kind": "status", "status": 429, "times": 1}),
    "drop-once": ("Connection dropped once", {"kind": "drop", "times": 1}),
}


#: Attempts studio makes when the preset sets no ``max_attempts`` (relay itself retries until the deadline).
STUDIO_ATTEMPTS = 6


@dataclass
class _VirtualClock:
    """Delivery's clock and sleep: a wait is recorded and added to the time, never slept,
    so the preset's deadline and backoff apply exactly and the page answers at once."""

    now_at: float = field(default_factory=time.time)
    waits: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.now_at

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now_at += seconds


@dataclass
class _Host:
    server: Any
    vendor: Any
    redirects: dict[str, str]
    recording: bool
    preflight: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Recorder:
    """A transport wrapper that keeps each attempt and its answer, for the page."""

    inner: Transport
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    def send(self, request: Request) -> Response:
        entry: dict[str, Any] = {"request": request}
        self.exchanges.append(entry)
        try:
            entry["response"] = self.inner.send(request)
        except TransportError as failure:
            entry["error"] = failure
            raise
        return entry["response"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def fake_registry() -> Any:
    """``relay.fakes``, imported by name as the demo does: the fakes name vendors, so they live
    outside ``engine/`` and the wheel maps them in."""
    return importlib.import_module("relay.fakes")


class FakeHosts:
    """The fakes of one studio run, started on first use and stopped by ``close``."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for host in self._hosts.values():
                host.server.stop()
            self._hosts.clear()

    def _host(self, preset: CompiledPreset, settings: Settings) -> _Host:
        fakes = fake_registry()
        host = self._hosts.get(preset.name)
        if host is None:
            # The same fake `relay fake PRESET --settings ...` serves: the preset's own, or a
            # recording fake built from its request schemas.
            vendor = fakes.fake_for(preset, settings)
            server = fakes.FakeServer(vendor).start()
            recording = isinstance(vendor, fakes.RecordingFake)
            host = _Host(server, vendor, fakes.redirects_for(preset, server.url), recording=recording)
            if any(check.fix is not None for check in preset.checks):
                # Ready the fake account as an operator readies a real one: `relay check --fix`.
                checks = check_preset(preset, settings, fix=True, redirects=host.redirects)
                host.preflight = [
                    {"name": c.name, "ok": c.ok, "fixed": c.fixed, "problems": c.problems} for c in checks
                ]
            # The account is made once, from the first send's settings: later settings that name
            # another list or key then meet the vendor's own refusal, as they would for real.
            self._hosts[preset.name] = host
        if host.recording:
            # The preset may have been edited since: routes and hosts follow the text being reviewed.
            host.vendor.routes = fakes.RecordingFake.for_preset(preset, settings=settings).routes
            host.redirects.update(fakes.redirects_for(preset, host.server.url))
        return host

    def send(self, preset: CompiledPreset, settings: Settings, event: Any, fault: str = "none") -> dict[str, Any]:
        """Deliver ``event`` to the preset's fake: the attempts, their answers and the outcome."""
        if fault not in FAULTS:
            raise InputError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        secrets = secret_forms(settings.secrets)
        with self._lock:
            host = self._host(preset, settings)
            fakes = fake_registry()
            host.server.faults.clear()
            if FAULTS[fault][1]:
                host.server.inject(fakes.Fault(**FAULTS[fault][1]))
            recorder = _Recorder(RedirectTransport(HTTPTransport(2.0, 10.0, 1), host.redirects))
            clock = _VirtualClock()
            cap = preset.delivery.max_attempts or STUDIO_ATTEMPTS
            deliverer = Deliverer(
                preset, settings, recorder, sleep=clock.sleep, clock=clock.now, rng=random.Random(0), max_attempts=cap
            )
            waits = clock.waits
            started = time.monotonic()
            try:
                outcome = deliverer.deliver(event)
            finally:
                recorder.close()
                host.server.faults.clear()
            title, columns, rows = host.vendor.table()
        exchanges = _exchanges(recorder.exchanges, waits, preset, settings, event)
        status = {"delivered": "delivered", "dropped": "dropped"}.get(outcome.status, "dead letter")
        result = {
            "outcome": status,
            "reason": outcome.reason,
            "rule": outcome.rule,
            "http_status": outcome.http_status,
            "attempts": outcome.attempts,
            "retries": outcome.retries,
            "waits": waits,
            "hint": outcome.hint,
            "note": None
            if preset.delivery.max_attempts
            else f"relay retries 5xx, timeouts and dropped connections until the delivery deadline "
            f"({preset.delivery.deadline:g} s); studio stops after {cap} attempts",
            "exchanges": exchanges,
            "fake": {
                "url": host.server.url,
                "kind": "recording fake (from the preset's request schemas)" if host.recording else "fake vendor",
                "preflight": host.preflight,
                "state": {"title": title, "columns": columns, "rows": rows[-20:]},
            },
            "milliseconds": round((time.monotonic() - started) * 1000),
        }
        return redact(json.loads(json.dumps(result, default=str)), secrets)  # type: ignore[no-any-return]


def _exchanges(
    recorded: list[dict[str, Any]], waits: list[float], preset: CompiledPreset, settings: Settings, event: Any
) -> list[dict[str, Any]]:
    out = []
    retry_index = 0
    for index, entry in enumerate(recorded):
        request: Request = entry["request"]
        response: Response | None = entry.get("response")
        step = request.step
        row: dict[str, Any] = {
            "step": step,
            "method": request.method,
            "url": request.url,
            "status": response.status if response is not None else entry["error"].kind,
            "body": _shown_body(response) if response is not None else entry["error"].detail,
            "content_type": response.content_type if response is not None else "",
            "wait": None,
        }
        following = recorded[index + 1]["request"] if index + 1 < len(recorded) else None
        retried = following is not None and following.url == request.url and following.method == request.method
        spec = next((s for s in preset.steps if s.name == step), None)
        missing = spec is not None and response is not None and response.status in spec.missing
        if retried and not missing and retry_index < len(waits):
            row["wait"] = waits[retry_index]
            retry_index += 1
        out.append(row)
    return out


def _shown_body(response: Response) -> Any:
    parsed = parse_body(response.content, response.content_type)
    return parsed if parsed is not None else response.text[:4000]

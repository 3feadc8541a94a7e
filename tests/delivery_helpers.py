"""Helpers shared by the delivery tests: fakes wired to presets, no real sleeping."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from relay import CompiledPreset
from relay.delivery.deliver import Deliverer
from relay.delivery.transport import HTTPTransport, RedirectTransport
from relay.fakes import FakeServer, MailgunFake, MailjetFake

REAL_HOSTS = {
    "mailgun": ["https://api.mailgun.net", "https://api.eu.mailgun.net"],
    "mailjet": ["https://api.mailjet.com"],
}


def fake_for(preset: CompiledPreset, settings: dict[str, Any], *, define_properties: bool = True) -> Any:
    """A fake vendor that accepts ``settings``: same keys, the list exists."""
    if preset.name == "mailgun":
        return MailgunFake(api_key=settings["api_key"], lists=[settings["list_address"]])
    properties = dict(preset.constants.get("properties", {})) if define_properties else {}
    return MailjetFake(
        api_key=settings["api_key"],
        secret_key=settings["secret_key"],
        lists=[settings["list_id"]],
        properties=properties,
    )


def redirects(preset: CompiledPreset, server: FakeServer) -> dict[str, str]:
    return dict.fromkeys(REAL_HOSTS[preset.name], server.url)


class Sleeps(list[float]):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def deliverer(
    preset: CompiledPreset,
    settings: dict[str, Any],
    server: FakeServer,
    *,
    read_timeout: float = 5.0,
    sleeps: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    max_attempts: int | None = None,
    deadline: float | None = None,
) -> Deliverer:
    resolved = preset.resolve_settings(settings, environ={})
    transport = RedirectTransport(
        HTTPTransport(connect_timeout=2.0, read_timeout=read_timeout), redirects(preset, server)
    )
    return Deliverer(
        preset,
        resolved,
        transport,
        sleep=sleeps if sleeps is not None else Sleeps(),
        clock=clock,
        rng=random.Random(7),
        max_attempts=max_attempts,
        deadline=deadline,
    )


MAILGUN_SETTINGS = {"api_key": "key-test-0000", "list_address": "newsletter@mg.example.com"}
MAILJET_SETTINGS = {"api_key": "pub-test-0000", "secret_key": "sec-test-0000", "list_id": 10001}

"""Faithful fake vendor servers for tests, the demo and users (``relay fake NAME``).

Kept outside ``engine/`` on purpose (the engine knows no vendor); the wheel installs
them as ``relay.fakes``, because users run ``relay fake`` too.
"""

from __future__ import annotations

from .mailgun import MailgunFake
from .mailjet import MailjetFake
from .recording import RecordingFake, Route
from .server import FakeRequest, FakeResponse, FakeServer, FakeVendor, Fault, RateLimit

__all__ = [
    "FAKES",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "FakeVendor",
    "Fault",
    "MailgunFake",
    "MailjetFake",
    "RateLimit",
    "RecordingFake",
    "Route",
]

#: Fake vendors by name, for the CLI and the demo.
FAKES: dict[str, type[FakeVendor]] = {"mailgun": MailgunFake, "mailjet": MailjetFake}

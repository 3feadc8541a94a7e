"""Faithful fake vendor servers for tests, the demo and users (``relay fake NAME``).

Kept outside ``engine/`` on purpose (the engine knows no vendor); the wheel installs
them as ``relay.fakes``, because users run ``relay fake`` too.

``fake_for(preset)`` gives the fake that stands in for any preset's vendor: a
specialised one when relay has one (``FAKES``), else the generic recording fake built
from the preset (its request schemas, its credentials, its ``fake.yaml``).
``redirects_for`` says which URLs to send to it.
"""

from __future__ import annotations

from typing import Any

from .brevo import BrevoFake
from .bulk import BulkVendor, ItemError, Job, JobTiming
from .customerio import CustomerIOFake
from .facebook_capi import FacebookCAPIFake
from .klaviyo import KlaviyoFake
from .mailchimp import MailchimpFake
from .mailgun import MailgunFake
from .mailjet import MailjetFake
from .recording import Answer, Profile, RecordingFake, Route, origin_pattern
from .sendgrid import SendGridFake
from .server import FakeRequest, FakeResponse, FakeServer, FakeVendor, Fault, RateLimit

__all__ = [
    "FAKES",
    "Answer",
    "BrevoFake",
    "BulkVendor",
    "CustomerIOFake",
    "FacebookCAPIFake",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "FakeVendor",
    "Fault",
    "ItemError",
    "Job",
    "JobTiming",
    "KlaviyoFake",
    "MailchimpFake",
    "MailgunFake",
    "MailjetFake",
    "Profile",
    "RateLimit",
    "RecordingFake",
    "Route",
    "SendGridFake",
    "fake_for",
    "redirects_for",
]

#: Specialised fake vendors by preset name (stateful, faithful to the vendor's rules).
FAKES: dict[str, type[FakeVendor]] = {
    "brevo": BrevoFake,
    "customerio": CustomerIOFake,
    "facebook_capi": FacebookCAPIFake,
    "klaviyo": KlaviyoFake,
    "mailchimp": MailchimpFake,
    "mailgun": MailgunFake,
    "mailjet": MailjetFake,
    "sendgrid": SendGridFake,
}


def fake_for(preset: Any, settings: Any = None) -> FakeVendor:
    """The fake vendor for ``preset`` (a CompiledPreset). With ``settings`` (resolved), it
    accepts exactly the credentials the preset sends with them, and what they name exists."""
    if preset.name in FAKES:
        vendor = FAKES[preset.name]()
        if settings is not None:
            vendor.accept(settings.values)
        return vendor
    return RecordingFake.for_preset(preset, settings=settings)


def redirects_for(preset: Any, target: str) -> dict[str, str]:
    """``--redirect`` pairs sending every URL the preset's requests and checks can render
    to (templated hosts included) to ``target``."""
    steps = [*preset.steps, *(c.request for c in preset.checks), *(c.fix for c in preset.checks if c.fix)]
    for step in preset.steps:  # a step's bulk request, its job's status request, its error report
        batch = step.batch
        if batch is not None:
            steps.append(batch.request)
            steps += [batch.job.poll] if batch.job else []
            steps += [batch.results.request] if batch.results and batch.results.request else []
    return {origin: target for origin in sorted({origin_pattern(step.url_source) for step in steps})}

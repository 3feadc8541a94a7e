"""Hand-written Python for each bundled preset: the baselines relay's engine is measured against.

Each integration produces exactly what relay renders for its preset: the same drops, and the same
``relay.Request`` (method, URL, headers, body, bytes); ``tests/test_bench.py`` and the bench itself
check it on every generated event before any time is taken. See ``base`` for what "the same
work" means here.
"""

from __future__ import annotations

from .base import Drop, Integration, Outcome, ReadsBeforeWrite, Send
from .brevo import Brevo
from .customerio import CustomerIo
from .facebook_capi import FacebookCapi
from .klaviyo import Klaviyo
from .mailchimp import Mailchimp
from .mailgun import Mailgun, MemberPlan
from .mailjet import Mailjet
from .sendgrid import SendGrid
from .webhook import Webhook

__all__ = ["HANDWRITTEN", "Drop", "Integration", "MemberPlan", "Outcome", "ReadsBeforeWrite", "Send"]

#: Preset name -> its hand-written integration.
HANDWRITTEN: dict[str, type[Integration]] = {
    cls.name: cls for cls in (Mailgun, Mailjet, SendGrid, Brevo, Klaviyo, Webhook, Mailchimp, CustomerIo, FacebookCapi)
}

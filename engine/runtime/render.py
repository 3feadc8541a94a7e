"""render(preset, event, settings) -> Decision: decide and build every step, for review.

Goldens, ``relay render``, studio and the docs use this. Delivery runs the same
steps itself, sending each request and binding what a ``read`` step answers
before the next step is built.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from .build import build_all, event_requests
from .decide import verdict
from .decision import Decision, Plan

__all__ = ["NO_REQUEST", "render"]

#: The drop reason for an event none of whose requests applies (every `when` false).
NO_REQUEST = "no request applies to this event (every request's `when` is false)"


def render(
    preset: CompiledPreset,
    event: Any,
    settings: Settings,
    *,
    event_ref: str = "",
    answers: Mapping[str, Any] | None = None,
    now: float | None = None,
    destination: str | None = None,
    trace: bool = False,
) -> Decision:
    """The decision for ``event``, with every request it would make, in order.

    ``answers`` stands in for what ``read`` steps would get back, by their ``as`` name
    (a name not given reads as null: "nothing there yet"). With ``trace``, the decision
    says why (``Decision.trace``).
    """
    action, reason, rule, found, context, order_key, fixed, mapping = verdict(
        preset, event, settings, event_ref, destination, trace
    )
    secrets = settings.secrets
    if action == "drop":
        return Decision("drop", reason, rule, (), found, secrets, mapping=mapping)
    clock = time.time() if now is None else now
    if found is None:  # no review: the steps' functions, with no Plan between
        requests = event_requests(preset, context or {}, answers, clock, fixed, secrets, event_ref)
    else:
        plan = Plan(action, reason, rule, found, secrets, context, order_key, event_ref, fixed, mapping)
        requests = build_all(preset, plan, answers=answers, now=clock)
    if not requests:
        return Decision("drop", NO_REQUEST, "requests", (), found, secrets, mapping=mapping)
    return Decision("send", None, rule, requests, found, secrets, order_key, mapping)

"""render(preset, event, settings) -> Decision: decide and build in one call, for review.

Goldens, ``relay render`` and the docs use this. Delivery calls ``decide``,
``build_lookup`` and ``build`` itself, so that a preset which reads before it
writes builds its final request once, from the answer it read.
"""

from __future__ import annotations

import time
from typing import Any

from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from .build import build, build_lookup
from .decide import decide
from .decision import Decision

__all__ = ["render"]


def render(
    preset: CompiledPreset,
    event: Any,
    settings: Settings,
    *,
    event_ref: str = "",
    lookup: Any = None,
    looked_up: bool = False,
    now: float | None = None,
    destination: str | None = None,
) -> Decision:
    """The decision for ``event``, with the request it would send.

    For a preset with a read-before-write lookup, the first call (``looked_up=False``)
    also returns the lookup request and builds the body as if nothing existed yet;
    pass the lookup's parsed answer (None for "missing") with ``looked_up=True`` to
    see the final request.
    """
    plan = decide(preset, event, settings, event_ref=event_ref, destination=destination)
    if plan.action == "drop":
        return Decision("drop", plan.reason, plan.rule, None, plan.trace, plan.secrets)
    lookup_request = None if looked_up else build_lookup(preset, plan)
    request = build(preset, plan, lookup=lookup if looked_up else None, now=time.time() if now is None else now)
    return Decision(
        "send",
        None,
        plan.rule,
        request,
        plan.trace,
        plan.secrets,
        lookup=lookup_request,
        order_key=plan.order_key,
    )

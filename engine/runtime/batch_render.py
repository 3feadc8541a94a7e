"""render_batch(preset, events, settings) -> BatchRender: the requests a batched run sends.

For review, like ``render``: goldens with ``events:`` pin it, ``relay render`` shows how
one event would be batched. It forms waves and batches with the same rules as delivery
(``relay.runtime.batch``), as if every event were waiting at once: each wave holds one
unit per contact (oldest first), each step runs for the whole wave, a step that batches
sends one bulk request per batch, any other step one request per unit. Reads are not
sent: each ``read`` step's answer comes from ``answers`` (by its ``as`` name), as in a
golden case.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import RelayError
from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from .batch import BatchItem, Pending, batches, build_batch, chunks, coalesce, render_item, wave_capacity
from .build import build
from .decide import decide
from .decision import Plan, Request, redact
from .render import NO_REQUEST

__all__ = ["BatchRender", "render_batch"]


@dataclass(frozen=True)
class BatchRender:
    """What a batched run does with ``events``: each event's decision, and every request in the
    order it is sent, with the events (their indexes) it carries."""

    decisions: tuple[dict[str, Any], ...]
    requests: tuple[tuple[Request, tuple[int, ...]], ...]
    secrets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"events": [{decision, reason, rule}...], "requests": [{events, step, method, ...}...]}``."""
        return {
            "events": [redact(decision, self.secrets) for decision in self.decisions],
            "requests": [{"events": list(indexes), **request.to_dict()} for request, indexes in self.requests],
        }


def render_batch(
    preset: CompiledPreset,
    events: Sequence[Any],
    settings: Settings,
    *,
    answers: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> BatchRender:
    """The decisions for ``events`` and the requests a batched run sends for them, in order."""
    clock = time.time() if now is None else now
    decisions: list[dict[str, Any]] = []
    plans: list[Plan | None] = []
    for index, event in enumerate(events):
        try:
            decided = decide(preset, event, settings, event_ref=f"event {index}")
        except RelayError as exc:
            decisions.append({"decision": "error", "error": str(exc)})
            plans.append(None)
            continue
        decisions.append({"decision": decided.action, "reason": decided.reason, "rule": decided.rule})
        plans.append(decided if decided.action == "send" else None)
    sending = {index: plan for index, plan in enumerate(plans) if plan is not None}
    pending: Pending[tuple[int, Any]] = Pending(preset.delivery.coalesce, lambda waiting: waiting[1])
    for index, plan in sending.items():
        contact = plan.order_key if plan.order_key is not None else ("event", index)
        pending.add(contact, (index, _partition(preset.delivery.coalesce_by, plan, index)))
    requests: list[tuple[Request, tuple[int, ...]]] = []
    sent: set[int] = set()
    while len(pending):
        units: list[tuple[tuple[int, ...], Plan]] = []
        for unit in pending.take(wave_capacity(preset)):
            indexes = tuple(index for index, _ in unit)
            units.append((indexes, coalesce([sending[i] for i in indexes])))
        _wave(preset, settings, units, answers, clock, requests, decisions)
        sent.update(index for request, indexes in requests for index in indexes)
    for index in sending:
        if index not in sent and decisions[index]["decision"] == "send":
            decisions[index] = {"decision": "drop", "reason": NO_REQUEST, "rule": "requests"}
    return BatchRender(tuple(decisions), tuple(requests), settings.secrets)


def _partition(by: Any, plan: Plan, index: int) -> Any:
    if by is None:
        return None
    try:
        value = by(plan.context)
    except Exception:
        return ("unmergeable", index)
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _wave(
    preset: CompiledPreset,
    settings: Settings,
    units: list[tuple[tuple[int, ...], Plan]],
    answers: Mapping[str, Any] | None,
    now: float,
    requests: list[tuple[Request, tuple[int, ...]]],
    decisions: list[dict[str, Any]],
) -> None:
    failed: set[tuple[int, ...]] = set()

    def fail(indexes: tuple[int, ...], exc: RelayError) -> None:
        failed.add(indexes)
        for index in indexes:
            decisions[index] = {"decision": "error", "error": str(exc)}

    for step in preset.steps:
        live = [(indexes, plan) for indexes, plan in units if indexes not in failed]
        entries: list[tuple[tuple[int, ...], BatchItem]] = []
        for indexes, plan in live:
            try:
                if not batches(preset, plan, step, answers=answers, now=now):  # one request, as unbatched
                    single = build(preset, plan, step, answers=answers, now=now)
                    requests.extend([(single, indexes)] if single is not None else [])
                    continue
                item = render_item(preset, plan, step, answers=answers, now=now)
            except RelayError as exc:
                fail(indexes, exc)
                continue
            if item is not None:
                entries.append((indexes, item))
        if step.batch is None:
            continue
        for members in chunks(step.batch, [item for _, item in entries]):
            chosen = [entries[i] for i in members]
            try:
                request = build_batch(
                    preset, step, chosen[0][1].group, [item.item for _, item in chosen], settings=settings, now=now
                )
            except RelayError as exc:
                for indexes, _ in chosen:
                    fail(indexes, exc)
                continue
            requests.append((request, tuple(sorted(i for indexes, _ in chosen for i in indexes))))

"""Batching, the pure half: one event's item, bulk requests, and which events go together.

Pure like ``build``: no I/O, the clock passed in. Delivery (``relay.delivery.batcher``)
and review (``render_batch``, goldens, ``relay render``) share every rule here, so a
golden pins exactly the bulk requests a run sends:

- ``render_item``: one event's item for a batched step (checked against ``item_schema``,
  so a bad event fails alone, before any batch is built), with its group and key;
- ``Pending``: the events waiting to be batched, and ``take`` the next *wave*: at most one
  unit per contact (a unit is one event, or, with ``delivery.coalesce``, all of the
  contact's waiting events merged by ``coalesce``), so two events of one contact never
  share a batch;
- ``chunks``: a step's items of one wave split into batches: equal ``group``, within the
  limits (items and bytes), each ``key`` at most once;
- ``build_batch``: the bulk request of one batch, checked against its schema.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ..errors import LeafRenderError
from ..expr.filters import to_json
from ..preset.model import BatchSpec, CompiledPreset, StepSpec
from ..preset.settings import Settings
from .build import answers_scope, assemble, failer, schema_problem
from .decide import RENDER_FAILURES, Fields, deep_merge, render_error
from .decision import Plan, Request

__all__ = ["BatchItem", "Pending", "batches", "build_batch", "chunks", "coalesce", "render_item", "wave_capacity"]

T = TypeVar("T")


@dataclass(frozen=True)
class BatchItem:
    """One event's (or one coalesced contact's) part of a batched step."""

    item: Any
    group: Any
    #: ``group`` as canonical JSON: items with equal ``group_id`` may share a batch.
    group_id: str
    key: str | None
    #: Bytes of the item as compact JSON: what it adds to a JSON body.
    size: int


def batches(
    preset: CompiledPreset, plan: Plan, step: StepSpec, *, answers: Mapping[str, Any] | None = None, now: float
) -> bool:
    """Whether ``step`` goes out in a batch for this plan (its ``batch.when``); else one request."""
    batch = step.batch
    if batch is None:
        return False
    if batch.when is None:
        return True
    context = {**plan.context, **answers_scope(preset, answers), "now": now}
    try:
        return bool(batch.when(context))
    except RENDER_FAILURES as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise render_error(preset, f"{batch.pointer}/when", detail, plan.secrets, plan.event_ref) from None


def render_item(
    preset: CompiledPreset, plan: Plan, step: StepSpec, *, answers: Mapping[str, Any] | None = None, now: float
) -> BatchItem | None:
    """The item ``step`` batches for a ``send`` plan, or None when its ``when`` is false.

    Raises RequestSchemaError (located at the item template) when the item fails
    ``item_schema``: the event fails alone, before it can spoil a batch.
    """
    batch = step.batch
    assert batch is not None, f"request {step.name!r} does not batch"
    context = {**plan.context, **answers_scope(preset, answers), "now": now}
    pointer = f"{batch.pointer}/item"
    try:
        if step.when is not None and not step.when(context):
            if plan.trace is not None:
                plan.trace.steps.append({"step": step.name, "effect": "skipped: its `when` is false"})
            return None
        item = batch.item(context)
        pointer = f"{batch.pointer}/group"
        group = batch.group(context) if batch.group is not None else None
        pointer = f"{batch.pointer}/key"
        key = batch.key(context) if batch.key is not None else None
    except LeafRenderError as failure:
        raise render_error(preset, failure.pointer, str(failure), plan.secrets, plan.event_ref) from None
    except RENDER_FAILURES as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise render_error(preset, pointer, detail, plan.secrets, plan.event_ref) from None
    if batch.item_validator is not None:
        problem = schema_problem(batch.item_validator, item, f"{batch.pointer}/item", "item")
        if problem is not None:
            field, message = problem
            raise render_error(preset, field, message, plan.secrets, plan.event_ref, schema=True)
    if batch.key is not None and (key is None or key == ""):
        raise render_error(
            preset, f"{batch.pointer}/key", "the item's key rendered empty", plan.secrets, plan.event_ref
        )
    size = len(to_json(item).encode("utf-8"))
    if batch.max_bytes is not None and size > batch.max_bytes:
        raise render_error(
            preset,
            f"{batch.pointer}/item",
            f"the item is {size:,} bytes, over the batch limit of {batch.max_bytes:,} (limits.bytes)",
            plan.secrets,
            plan.event_ref,
        )
    if plan.trace is not None:
        plan.trace.steps.append({"step": step.name, "effect": f"{step.role}, batched"})
    group_id = group if isinstance(group, str) else json.dumps(group, sort_keys=True, default=str)
    return BatchItem(item, group, group_id, None if key is None else str(key), size)


def build_batch(
    preset: CompiledPreset, step: StepSpec, group: Any, items: Sequence[Any], *, settings: Settings, now: float
) -> Request:
    """The bulk request carrying ``items`` (rendered items, in order) of one ``group``."""
    batch = step.batch
    assert batch is not None, f"request {step.name!r} does not batch"
    context = {
        "settings": settings.values,
        "constants": preset.constants,
        "now": now,
        "group": group,
        "items": list(items),
    }
    fail = failer(preset, settings.secrets, "")
    try:
        request = assemble(batch.request, context, fail=fail)
    except LeafRenderError as failure:
        raise render_error(preset, failure.pointer, str(failure), settings.secrets, "") from None
    except RENDER_FAILURES as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise render_error(preset, batch.pointer, detail, settings.secrets, "") from None
    if batch.request.validator is not None:
        problem = schema_problem(batch.request.validator, request.body, f"{batch.pointer}/body", "body")
        if problem is not None:
            raise render_error(preset, problem[0], problem[1], settings.secrets, "", schema=True)
    return request


def chunks(batch: BatchSpec, items: Sequence[BatchItem]) -> list[list[int]]:
    """Indexes of ``items`` per batch, in order: one group per batch, within the limits, each key once.

    The byte limit is estimated from the items' JSON sizes; the sender checks the
    encoded body and halves a batch that is still over it.
    """
    out: list[_Chunk] = []
    by_group: dict[str, list[_Chunk]] = {}
    for index, item in enumerate(items):
        candidates = by_group.setdefault(item.group_id, [])
        chunk = next((c for c in candidates if c.fits(batch, item)), None)
        if chunk is None:
            chunk = _Chunk()
            candidates.append(chunk)
            out.append(chunk)
        chunk.add(index, item)
    return [chunk.members for chunk in out]


class _Chunk:
    def __init__(self) -> None:
        self.members: list[int] = []
        self.keys: set[str] = set()
        self.size = 0

    def fits(self, batch: BatchSpec, item: BatchItem) -> bool:
        if len(self.members) >= batch.max_items or (item.key is not None and item.key in self.keys):
            return False
        return batch.max_bytes is None or self.size + item.size + 1 <= batch.max_bytes

    def add(self, index: int, item: BatchItem) -> None:
        self.members.append(index)
        self.size += item.size + 1
        if item.key is not None:
            self.keys.add(item.key)


def coalesce(plans: Sequence[Plan]) -> Plan:
    """One contact's plans merged in order: the last plan's scope, with ``fields`` deep-merged
    from the first to the last (a later value wins; a field a later event leaves out is kept)."""
    if len(plans) == 1:
        return plans[0]
    merged: dict[str, Any] = {}
    for plan in plans:
        merged = deep_merge(merged, plan.context.get("fields") or {})
    last = plans[-1]
    refs = ", ".join(plan.event_ref for plan in plans if plan.event_ref)
    return replace(last, context={**last.context, "fields": Fields(merged)}, event_ref=refs or last.event_ref)


def wave_capacity(preset: CompiledPreset) -> int:
    """How many contacts one wave takes: the largest batch any step allows."""
    return max((step.batch.max_items for step in preset.steps if step.batch is not None), default=1)


class Pending(Generic[T]):
    """Events waiting to be batched, by contact, in arrival order (not thread-safe).

    With ``coalesce``, a unit is the run of a contact's waiting events, from the oldest,
    for which ``partition`` gives the same value (``partition`` None: all of them).
    """

    def __init__(self, coalesce: bool = False, partition: Callable[[T], Hashable] | None = None) -> None:
        self.coalesce = coalesce
        self.partition = partition
        self._contacts: dict[Hashable, deque[tuple[int, T]]] = {}
        self._sequence = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, contact: Hashable, value: T) -> None:
        self._sequence += 1
        self._contacts.setdefault(contact, deque()).append((self._sequence, value))
        self._count += 1

    def ready(self, busy: set[Hashable] | frozenset[Hashable] = frozenset()) -> int:
        """How many contacts have an event that could go in the next wave."""
        return sum(1 for contact in self._contacts if contact not in busy)

    def take(self, capacity: int, busy: set[Hashable] | frozenset[Hashable] = frozenset()) -> list[list[T]]:
        """The next wave: up to ``capacity`` units, one per contact not ``busy``, oldest first.

        A unit is a contact's oldest waiting event; with ``coalesce``, the run of its waiting
        events that ``partition`` puts with the oldest.
        """
        heads = sorted(
            (queue[0][0], contact) for contact, queue in self._contacts.items() if contact not in busy and queue
        )
        wave: list[list[T]] = []
        for _sequence, contact in heads[:capacity]:
            queue = self._contacts[contact]
            unit = self._run(queue) if self.coalesce else [queue[0][1]]
            for _ in unit:
                queue.popleft()
            if not queue:
                del self._contacts[contact]
            self._count -= len(unit)
            wave.append(unit)
        return wave

    def _run(self, queue: deque[tuple[int, T]]) -> list[T]:
        if self.partition is None:
            return [value for _, value in queue]
        first = self.partition(queue[0][1])
        run: list[T] = []
        for _, value in queue:
            if run and self.partition(value) != first:
                break
            run.append(value)
        return run

    def oldest(self, busy: set[Hashable] | frozenset[Hashable] = frozenset()) -> T | None:
        """The oldest event that could go in the next wave, or None."""
        heads = [queue[0] for contact, queue in self._contacts.items() if contact not in busy and queue]
        return min(heads, key=lambda head: head[0])[1] if heads else None

    def drop(self, contact: Hashable) -> list[T]:
        """Remove and return a contact's waiting events, in order (to park them behind a failure)."""
        queue = self._contacts.pop(contact, deque())
        self._count -= len(queue)
        return [value for _, value in queue]

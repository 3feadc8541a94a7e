"""Send one wave of events: every step in order, through the bulk API where a step batches.

A wave holds at most one *unit* per contact (one event, or a contact's events merged
when the preset coalesces), so two events of one contact never race in a batch. Each
step runs for the whole wave before the next: a step that does not batch sends one
request per unit (a ``read`` binds its answer for that unit), a batched step renders an
item per unit and sends them in batches (``relay.runtime.batch.chunks``).

Every unit ends with one outcome, and so does each of its events:

- an item that fails its ``item_schema`` (or cannot be rendered) fails its unit alone;
- an answer the preset classifies ``retry`` (429, 5xx, no answer) retries the batch, as
  for any request, until the delivery deadline;
- a whole-batch ``fail`` (a 4xx, or a job that ended ``failed``) splits the batch in two
  and sends each half, down to single items, so only the offender fails;
- the vendor's per-item errors (``results``) fail exactly those units, with the vendor's
  message and the preset's hint; the rest are delivered;
- a ``stop`` answer fails the batch's units and halts the wave; what is not sent after it
  is left for the runner to park (or, in a service, to keep queued).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeliveryError, RelayError
from ..preset.model import StepSpec
from ..runtime.batch import BatchItem, batches, build_batch, chunks, render_item
from ..runtime.build import build
from ..runtime.decision import Plan, Request
from ..runtime.render import NO_REQUEST
from .batch_job import ItemError, JobFailed, JobReader, Member, origin
from .deliver import Deliverer, Outcome, StepProgress, Tally
from .input import Item
from .journal import Journal
from .retry import parse_body

__all__ = ["CHUNKS_AT_ONCE", "Unit", "WaveSender"]

#: Batches of one step sent side by side, at most (they share the destination's rate limit).
CHUNKS_AT_ONCE = 8


@dataclass
class Unit:
    """One contact's part of a wave: its events (several when coalesced) and their plan."""

    items: list[Item]
    plan: Plan
    progress: Sequence[StepProgress]
    answers: dict[str, Any] = field(default_factory=dict)
    #: Set once the unit is settled: failed, or (at the end of the wave) delivered.
    outcome: Outcome | None = None
    #: A stop answer (or a stop asked for) came before this unit was sent: the runner parks it.
    unsent: bool = False
    built: list[Request] = field(default_factory=list)
    done_before: int = 0
    attempts: int = 1
    last_status: int | str | None = None

    def fail(
        self, reason: str, *, status: Any = None, attempts: int = 1, hint: str | None = None, stop: bool = False
    ) -> None:
        self.outcome = Outcome(
            "failed", reason=reason, rule=self.plan.rule, http_status=status, attempts=attempts, hint=hint, stop=stop,
            plan=self.plan,
        )  # fmt: skip

    def done(self, step: str) -> bool:
        return all(progress.done(step) for progress in self.progress)

    def mark(self, step: str) -> None:
        for progress in self.progress:
            progress.mark(step)


class WaveSender:
    def __init__(self, deliverer: Deliverer, journal: Journal, *, on_batch: Any = None, halted: Any = None) -> None:
        self.deliverer = deliverer
        self.preset = deliverer.preset
        self.jobs = JobReader(deliverer, journal)
        self.journal = journal
        #: ``on_batch(step, items, bytes)`` for every bulk request built (sent, or in a dry run).
        self.on_batch = on_batch or (lambda _step, _items, _size: None)
        #: ``halted()`` is true once nothing more may be sent (a stop answer, a stop asked for).
        self._outer_halted = halted or (lambda: False)
        #: A stop answer in a wave: nothing more is sent, in this wave or any other.
        self.stop_seen = threading.Event()
        self._multi = len(self.preset.steps) > 1

    def halted(self) -> bool:
        return self.stop_seen.is_set() or self._outer_halted()

    def run(self, units: list[Unit], tally: Tally) -> None:
        """Carry the wave through every step; each unit ends settled (or ``unsent``)."""
        for step in self.preset.steps:
            live = [unit for unit in units if unit.outcome is None and not unit.unsent]
            if not live:
                break
            if step.batch is None or not self.deliverer.batch:
                for unit in live:
                    self._single(unit, step, tally)
            else:
                self._batched(live, step, tally)
        for unit in units:
            if unit.outcome is None and not unit.unsent:
                unit.outcome = self._finished(unit)

    def _finished(self, unit: Unit) -> Outcome:
        if not unit.built and not unit.done_before:
            return Outcome("dropped", reason=NO_REQUEST, rule="requests", plan=unit.plan)
        if self.deliverer.dry_run:
            return Outcome("rendered", rule=unit.plan.rule, plan=unit.plan, requests_built=tuple(unit.built))
        return Outcome(
            "delivered", rule=unit.plan.rule, http_status=unit.last_status, attempts=unit.attempts, plan=unit.plan,
            requests_built=tuple(unit.built),
        )  # fmt: skip

    def _reason(self, step: StepSpec, detail: str) -> str:
        return f"{step.name}: {detail}" if self._multi else detail

    def _single(self, unit: Unit, step: StepSpec, tally: Tally) -> None:
        """One request for one unit, exactly as an unbatched delivery makes it."""
        if step.role != "read" and unit.done(step.name):
            if unit.plan.trace is not None:
                unit.plan.trace.steps.append({"step": step.name, "effect": "sent by an earlier attempt"})
            unit.done_before += 1
            return
        if self.halted():
            unit.unsent = True
            return
        try:
            request = build(self.preset, unit.plan, step, answers=unit.answers, now=self.deliverer.clock())
        except RelayError as exc:
            unit.fail(str(exc))
            return
        if request is None:
            return
        unit.built.append(request)
        if self.deliverer.dry_run:
            return
        before = tally.retries
        try:
            answer = self.deliverer.send(request, tally, {**unit.plan.context, **unit.answers, "step": step.name},
                                         missing=step.missing)  # fmt: skip
        except DeliveryError as exc:
            unit.fail(self._reason(step, exc.detail), status=exc.status, attempts=exc.attempts, hint=exc.hint,
                      stop=exc.stop)  # fmt: skip
            if exc.stop:
                self.stop_seen.set()
            return
        unit.attempts = max(unit.attempts, tally.retries - before + 1)
        unit.last_status = answer.status
        tally.lookups += step.role == "read"
        if step.bind is not None:
            missing = answer.status in step.missing
            unit.answers[step.bind] = None if missing else parse_body(answer.content, answer.content_type)
        if step.role != "read":
            unit.mark(step.name)

    def _batched(self, units: list[Unit], step: StepSpec, tally: Tally) -> None:
        assert step.batch is not None
        entries: list[tuple[Unit, BatchItem]] = []
        now = self.deliverer.clock()
        for unit in units:
            if unit.done(step.name):
                if unit.plan.trace is not None:
                    unit.plan.trace.steps.append({"step": step.name, "effect": "sent by an earlier attempt"})
                unit.done_before += 1
                continue
            failure = next((f for f in (p.failure(step.name) for p in unit.progress) if f is not None), None)
            if failure is not None:  # a job a crashed run sent reported this item refused
                unit.fail(self._reason(step, failure.message), status=failure.status, hint=failure.hint)
                continue
            try:
                if not batches(self.preset, unit.plan, step, answers=unit.answers, now=now):
                    self._single(unit, step, tally)  # what the bulk API cannot express: one by one
                    continue
                item = render_item(self.preset, unit.plan, step, answers=unit.answers, now=now)
            except RelayError as exc:
                unit.fail(str(exc))
                continue
            if item is not None:
                entries.append((unit, item))
        for generation in _generations(
            [[entries[i] for i in members] for members in chunks(step.batch, [item for _, item in entries])]
        ):
            self._send_all(step, generation, tally)

    def _send_all(self, step: StepSpec, batches: list[list[tuple[Unit, BatchItem]]], tally: Tally) -> None:
        """Send batches that share no item key side by side (at most CHUNKS_AT_ONCE at a time):
        their items are different contacts, so nothing can race; the rate limit paces them."""
        for start in range(0, len(batches), CHUNKS_AT_ONCE):
            group = batches[start : start + CHUNKS_AT_ONCE]
            if len(group) == 1:
                self._send(step, group[0], tally)
                continue
            tallies = [Tally() for _ in group]
            failures: list[BaseException] = []

            threads = [
                threading.Thread(
                    target=self._send_guarded, args=(step, entries, own, failures), name="relay-batch", daemon=True
                )
                for entries, own in zip(group, tallies, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for own in tallies:
                tally.add(own)
            if failures:
                raise failures[0]

    def _send_guarded(
        self, step: StepSpec, entries: list[tuple[Unit, BatchItem]], tally: Tally, failures: list[BaseException]
    ) -> None:
        try:
            self._send(step, entries, tally)
        except BaseException as exc:  # re-raised in the wave's thread
            failures.append(exc)

    def _send(self, step: StepSpec, entries: list[tuple[Unit, BatchItem]], tally: Tally) -> None:
        """Send one batch; split it in two on a whole-batch refusal, down to single items."""
        batch = step.batch
        assert batch is not None
        if self.halted():
            for unit, _ in entries:
                unit.unsent = True
            return
        group = entries[0][1].group
        try:
            request = build_batch(self.preset, step, group, [item.item for _, item in entries],
                                  settings=self.deliverer.settings, now=self.deliverer.clock())  # fmt: skip
        except RelayError as exc:
            if len(entries) > 1:  # an item the bulk schema refuses: find it
                return self._split(step, entries, tally)
            entries[0][0].fail(str(exc))
            return
        if batch.max_bytes is not None and len(request.content) > batch.max_bytes:
            if len(entries) > 1:
                return self._split(step, entries, tally)
            entries[0][0].fail(
                self._reason(step, f"the bulk body is {len(request.content):,} bytes, over limits.bytes")
            )
            return
        self.on_batch(step.name, sum(len(unit.items) for unit, _ in entries), len(request.content))
        for unit, _ in entries:
            unit.built.append(request)
        if self.deliverer.dry_run:
            return
        first = entries[0][0]
        scope = {**first.plan.context, **first.answers, "step": step.name}
        before = tally.retries
        try:
            answer = self.deliverer.send(request, tally, scope)
            members = [Member(tuple(item.key for item in unit.items), entry.key) for unit, entry in entries]
            trusted = origin(self.jobs.destination(request.url))
            submit = parse_body(answer.content, answer.content_type)
            errors, ref = self.jobs.settle(step, group, submit, answer.status, members, tally, scope, trusted)
        except DeliveryError as exc:
            if not exc.stop and not exc.retryable and len(entries) > 1:
                return self._split(step, entries, tally)
            for unit, _ in entries:
                unit.fail(self._reason(step, exc.detail), status=exc.status, attempts=exc.attempts, hint=exc.hint,
                          stop=exc.stop)  # fmt: skip
            if exc.stop:
                self.stop_seen.set()
            return
        except JobFailed as exc:
            if exc.split and len(entries) > 1:
                return self._split(step, entries, tally)
            for unit, _ in entries:
                unit.fail(self._reason(step, exc.message))
            return
        attempts = tally.retries - before + 1
        for index, (unit, _) in enumerate(entries):
            unit.attempts = max(unit.attempts, attempts)
            error: ItemError | None = errors.get(index)
            if error is not None:
                unit.fail(self._reason(step, error.message), status=error.status or answer.status,
                          attempts=attempts, hint=error.hint)  # fmt: skip
                continue
            unit.last_status = answer.status
            unit.mark(step.name)
        if ref is not None:
            self.journal.drop_job(ref)

    def _split(self, step: StepSpec, entries: list[tuple[Unit, BatchItem]], tally: Tally) -> None:
        middle = len(entries) // 2
        self._send(step, entries[:middle], tally)
        self._send(step, entries[middle:], tally)


def _generations(batches: list[list[tuple[Unit, BatchItem]]]) -> list[list[list[tuple[Unit, BatchItem]]]]:
    """Batches in rounds: a batch holding a key an earlier batch holds goes in a later round
    (two contacts the vendor sees as one), so it is applied after it, never beside it."""
    rounds: list[list[list[tuple[Unit, BatchItem]]]] = []
    last_round: dict[str, int] = {}
    for entries in batches:
        keys = [item.key for _, item in entries if item.key is not None]
        number = 1 + max((last_round[key] for key in keys if key in last_round), default=-1)
        while len(rounds) <= number:
            rounds.append([])
        rounds[number].append(entries)
        for key in keys:
            last_round[key] = number
    return rounds

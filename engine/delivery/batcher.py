"""The batcher: decided events wait a little, then go out in waves through the bulk APIs.

``run_stream`` hands every event it decided to send to ``Batcher.add`` (the reader's
thread). A dispatcher thread forms *waves* (``relay.runtime.batch.Pending.take``): at
most one unit per contact, oldest first, up to the largest batch a step allows. A wave
is sent when it is full (for a preset that coalesces: when the buffer is, so that a
contact's events meet), when the oldest waiting event has waited ``batch.flush`` seconds,
when the buffer is full, or when the input ends. Up to ``concurrency`` waves
are in flight at once; a contact is in at most one of them, so its events still go in
input order (its next event waits for the wave in flight), whatever the concurrency.

Each event ends as exactly one outcome, settled through the runner (``settle``), which
keeps the dead letter, the journal, the per-contact blocks and the stop rules: when a
unit fails, its contact's events still waiting here are parked behind it, in order.
Memory stays flat: ``add`` blocks while the buffer holds ``max_pending`` events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from ..errors import Interrupted
from ..runtime.batch import Pending, coalesce, wave_capacity
from .batch_job import resume
from .batch_send import Unit, WaveSender
from .deliver import Deliverer, Outcome, Tally
from .input import Item
from .journal import Journal

__all__ = ["Batcher"]

#: An event waiting in the batcher: when it arrived, the event, and what it merges by.
_Waiting = tuple[float, Item, Any]

#: The buffer holds at most this many waves' worth of events (and at least MIN_PENDING, or
#: MIN_COALESCING when the preset merges a contact's events: the more wait, the more merge).
PENDING_WAVES = 2
MIN_PENDING = 1000
MIN_COALESCING = 10_000


class Batcher:
    def __init__(
        self,
        deliverer: Deliverer,
        journal: Journal,
        *,
        settle: Callable[[Item, Outcome | None], None],
        parked_reason: Callable[[Item], str | None],
        halted: Callable[[], bool],
        stopping: threading.Event,
        concurrency: int = 1,
        on_tally: Callable[[Tally], None] = lambda _tally: None,
        on_batch: Callable[[str, int, int], None] = lambda _step, _items, _size: None,
    ) -> None:
        preset = deliverer.preset
        self.deliverer = deliverer
        self.journal = journal
        self._settle = settle
        self._parked_reason = parked_reason
        self._halted = halted
        self._stopping = stopping
        self._on_tally = on_tally
        self.capacity = wave_capacity(preset)
        self.flush = min(step.batch.flush for step in preset.steps if step.batch is not None)
        coalescing = preset.delivery.coalesce
        self.max_pending = max(PENDING_WAVES * self.capacity, MIN_COALESCING if coalescing else MIN_PENDING)
        #: Send a wave as soon as it is full; a coalescing preset waits for a full buffer (or the
        #: flush interval) instead, so a contact's events have the time to meet and merge.
        self._eager = not coalescing
        self.concurrency = max(1, concurrency)
        self._sender = WaveSender(deliverer, journal, on_batch=on_batch, halted=self._stop_sending)
        self._pending: Pending[_Waiting] = Pending(preset.delivery.coalesce, lambda waiting: waiting[2])
        self._busy: set[Any] = set()
        self._waves = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._dispatch, name="relay-batcher", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def resume(self) -> int:
        """Finish the jobs a crashed run left open, by polling them (never by sending again)."""
        tally = Tally()
        try:
            return resume(self.deliverer, self.journal, tally)
        finally:
            self._on_tally(tally)

    def _partition(self, item: Item) -> Any:
        """What must be equal for a contact's waiting events to merge (``delivery.coalesce``)."""
        by = self.deliverer.preset.delivery.coalesce_by
        if by is None or item.plan is None:
            return None
        try:
            value = by(item.plan.context)
        except Exception:  # cannot tell: this event merges with nothing
            return ("unmergeable", item.line, item.batch_index)
        return value if isinstance(value, Hashable) else repr(value)

    @staticmethod
    def contact(item: Item) -> Any:
        """Events with one order key share a contact; an event without one is its own."""
        return item.order_key if item.order_key is not None else ("line", item.line, item.batch_index)

    def add(self, item: Item) -> bool:
        """Queue a decided event; False when the run is stopping and it was not queued."""
        with self._cond:
            while len(self._pending) >= self.max_pending and not self._stopping.is_set():
                self._cond.notify_all()  # a full buffer sends at once
                self._cond.wait(0.1)
            if self._stopping.is_set():
                return False
            reason = self._parked_reason(item)
            if reason is not None:
                self._settle(item, Outcome("parked", reason=reason))
                return True
            empty = not len(self._pending)
            self._pending.add(self.contact(item), (time.monotonic(), item, self._partition(item)))
            if empty or len(self._pending) >= self.max_pending:
                self._cond.notify_all()
        return True

    def close(self, grace: float | None = None) -> None:
        """No more events: send what waits and wait for every wave (``grace`` seconds when stopping)."""
        deadline = None if grace is None else time.monotonic() + grace
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=grace)
        with self._cond:
            while self._waves and (deadline is None or time.monotonic() < deadline):
                self._cond.wait(0.05)
        if self._error is not None:
            raise self._error

    def _stop_sending(self) -> bool:
        return self._stopping.is_set() or self._halted()

    def _next_wave(self) -> list[list[_Waiting]] | None:
        """Under the lock: wait until a wave should go, and take it; None when all is done."""
        while True:
            if self._stopping.is_set():
                return None
            if self._halted():
                self._park_everything()
            waiting = len(self._pending)
            if not waiting and self._closed and not self._waves:
                return None
            if waiting and self._waves < self.concurrency:
                ready = self._pending.ready(self._busy)
                full = (self._eager and ready >= self.capacity) or waiting >= self.max_pending or self._closed
                oldest = self._pending.oldest(self._busy)
                if ready and (full or (oldest is not None and time.monotonic() - oldest[0] >= self.flush)):
                    return self._pending.take(self.capacity, self._busy)
                if ready and oldest is not None:
                    self._cond.wait(max(0.001, oldest[0] + self.flush - time.monotonic()))
                    continue
            self._cond.wait(0.25)

    def _dispatch(self) -> None:
        try:
            while True:
                with self._cond:
                    wave = self._next_wave()
                    if wave is None:
                        break
                    for unit in wave:
                        self._busy.add(self.contact(unit[0][1]))
                    self._waves += 1
                if self.concurrency == 1:
                    self._run(wave)
                else:  # daemon threads, as the runner's workers: an abandoned send never holds up exit
                    threading.Thread(target=self._run, args=(wave,), name="relay-wave", daemon=True).start()
        except BaseException as exc:  # the journal or the dead letter failed: the runner stops loudly
            self._error = exc
            self._stopping.set()

    def _run(self, wave: list[list[_Waiting]]) -> None:
        units = [self._unit([waiting[1] for waiting in unit]) for unit in wave]
        tally = Tally()
        try:
            self._sender.run(units, tally)
        except Interrupted:
            pass  # what has no outcome stays unrecorded: a rerun delivers it
        except Exception as exc:  # a bug must not lose events: what is unsettled fails, and says why
            for unit in units:
                if unit.outcome is None and not unit.unsent:
                    unit.fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._on_tally(tally)
            try:
                self._finish(units)
            except BaseException as exc:
                self._error = exc
                self._stopping.set()

    def _unit(self, items: list[Item]) -> Unit:
        plans = [item.plan for item in items if item.plan is not None]
        progress = [self.journal.steps(item.key) for item in items]
        return Unit(items=items, plan=coalesce(plans), progress=progress)

    def _finish(self, units: list[Unit]) -> None:
        with self._cond:
            try:
                for unit in units:
                    for item in unit.items:
                        if unit.outcome is not None:
                            self._settle(item, replace(unit.outcome))
                        elif unit.unsent:
                            reason = self._parked_reason(item)
                            self._settle(item, Outcome("parked", reason=reason) if reason else None)
                    contact = self.contact(unit.items[0])
                    self._busy.discard(contact)
                    if self._parked_reason(unit.items[0]) is not None:  # the contact is blocked now
                        for _, waiting, _ in self._pending.drop(contact):
                            self._settle(waiting, Outcome("parked", reason=self._parked_reason(waiting)))
            finally:
                self._waves -= 1
                self._cond.notify_all()

    def _park_everything(self) -> None:
        """After a stop answer nothing more is sent: what waits is parked with the reason (a
        contact with a wave in flight is parked when that wave settles, behind it)."""
        while True:
            wave = self._pending.take(len(self._pending), self._busy)
            if not wave:
                return
            for unit in wave:
                for _, item, _ in unit:
                    reason = self._parked_reason(item)
                    self._settle(item, Outcome("parked", reason=reason) if reason else None)

"""Continuous delivery: every accepted event goes to every destination, each on its own.

A destination is a ``DestinationRunner``: its own thread running ``run_stream``
(the same loop as ``relay send``: per-contact order, retries until the deadline,
AIMD rate adaptation, parking behind failures), its own journal, dead letter,
rate limit and transport. It reads its ``Feed`` (the embedded queue, or Kafka
partitions) at its own pace, so one that is down or throttled never slows another.

After an answer that means stop (a wrong key, a missing list) the destination is
*paused*: the event stays unrecorded in the queue with everything after it,
``/ready`` names the reason, and it tries again after ``stop_retry`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..delivery.deadletter import DeadLetter
from ..delivery.deliver import Deliverer
from ..delivery.journal import Journal
from ..delivery.ratelimit import TokenBucket
from ..delivery.runner import RunControl, StreamStats, run_stream
from ..delivery.stream import make_transport
from ..errors import RecordError
from ..runtime.decision import Plan, Trace
from .config import Destination
from .logs import ServiceLog
from .metrics import Metrics

__all__ = ["FILTERED", "DestinationRunner", "Feed", "FilteredDeliverer"]

#: The drop reason of an event the destination's ``filter`` keeps out.
FILTERED = "filtered out by the destination's filter"
#: How long a destination whose outcomes cannot be recorded waits before it tries again.
RECORD_RETRY = 5.0


class Feed(Protocol):
    """Where a destination's events come from, with a position per event that is unique and stable."""

    def lines(self, control: RunControl) -> Iterator[tuple[int, bytes]]:
        """Every event not yet finished, in order, waiting for more until ``control`` stops."""
        ...

    def recorded(self, position: int) -> None:
        """The event at ``position`` has a durably recorded outcome."""
        ...

    def received_at(self, position: int) -> float | None: ...

    def checkpoint(self, before_saving: Any) -> None:
        """Save progress up to the lowest position not yet recorded; ``before_saving()`` runs first."""
        ...

    def depth(self) -> int: ...

    def in_flight(self) -> int: ...


class FilteredDeliverer(Deliverer):
    """A Deliverer that first applies the destination's ``filter`` (a Jinja expression over ``event``)."""

    def __init__(self, *args: Any, event_filter: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_filter = event_filter

    def decide(self, event: Any, event_ref: str = "") -> Plan | Any:
        if self.event_filter is not None and isinstance(event, Mapping):
            secrets = self.settings.secrets
            try:
                keep = bool(self.event_filter({"event": event}))
            except Exception as exc:  # an event the filter cannot read is kept out, and says why
                return Plan("drop", f"the filter failed: {exc}", "filter", Trace(), secrets, event_ref=event_ref)
            if not keep:
                return Plan("drop", FILTERED, "filter", Trace(), secrets, event_ref=event_ref)
        return super().decide(event, event_ref)


class DestinationRunner:
    def __init__(
        self,
        destination: Destination,
        feed: Feed,
        data_dir: Path,
        metrics: Metrics,
        log: ServiceLog,
        *,
        worker: str = "",
    ) -> None:
        self.destination = destination
        self.name = destination.name
        self.feed = feed
        self.metrics = metrics
        self.log = log
        suffix = f".{worker}" if worker else ""
        self.journal = Journal(data_dir / f"{self.name}.journal.sqlite")
        # Long-running, and in Kafka mode shared by workers: always ask the journal, even if it
        # was empty when opened (another worker, or this one, may have recorded since).
        self.journal.had_entries = True
        self.dead_letter = DeadLetter(data_dir / f"{self.name}{suffix}.deadletter.ndjson")
        self.dead_letter.check_writable()
        preset = destination.preset
        self.transport = make_transport(preset, destination.redirects, pool_size=destination.concurrency)
        options, policy = destination.options, preset.delivery
        rate = options.rate or policy.rate
        self.control = RunControl()
        self.deliverer = FilteredDeliverer(
            preset,
            destination.settings,
            self.transport,
            bucket=TokenBucket(float(rate) if rate else None, int(options.burst or policy.burst)),
            sleep=lambda seconds: self.control.sleep(seconds),  # noqa: PLW0108 - each run has its own control
            max_attempts=options.max_attempts,
            deadline=options.deadline,
            destination=self.name,
            event_filter=destination.filter,
            batch=options.batch is not False,
        )
        self.shutdown = threading.Event()
        #: Why the destination is paused (a stop answer's hint), or None.
        self.paused: str | None = None
        #: Why outcomes cannot be recorded right now, or None.
        self.problem: str | None = None
        self.totals: dict[str, float] = {"requests": 0, "retries": 0, "throttled": 0, "lookups": 0}
        self._live: StreamStats | None = None
        self._thread = threading.Thread(target=self._loop, name=f"relay-{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self.shutdown.is_set():
            self.control = RunControl()
            try:
                stats = run_stream(
                    self.deliverer,
                    self.feed.lines(self.control),
                    journal=self.journal,
                    dead_letter=self.dead_letter,
                    concurrency=self.destination.concurrency,
                    control=self.control,
                    progress=self._progress,
                    progress_every=1.0,
                    on_recorded=self._recorded,
                    pause_on_stop=True,
                )
            except RecordError as exc:
                self._fold(self._live)
                self.problem = str(exc)
                self.log.warning("record_failed", destination=self.name, error=str(exc))
                self.shutdown.wait(RECORD_RETRY)
                continue
            self.problem = None
            self._fold(stats)
            self.checkpoint()
            if stats.stopped is not None and not self.shutdown.is_set():
                self.paused = stats.stopped
                self.log.warning("destination_paused", destination=self.name, reason=stats.stopped,
                                 retry_in=self.destination.stop_retry)  # fmt: skip
                self.shutdown.wait(self.destination.stop_retry)
                self.paused = None
                self.log.event("destination_resumed", destination=self.name)

    def _progress(self, stats: StreamStats) -> None:
        self._live = stats

    def _fold(self, stats: StreamStats | None) -> None:
        if stats is not None:
            for name in self.totals:
                self.totals[name] += getattr(stats, name)
        self._live = None

    def _recorded(self, position: int, key: str, status: str) -> None:
        received = self.feed.received_at(position)
        self.feed.recorded(position)
        if status in ("delivered", "dropped", "failed", "parked"):
            self.metrics.outcome(self.name, status, None if received is None else time.time() - received)
        if status == "failed":
            self.log.warning("event_failed", destination=self.name, position=position, key=key)

    def checkpoint(self) -> None:
        """Save the feed's progress, the journal committed first (so no saved position outruns it)."""
        try:
            self.feed.checkpoint(self.journal.flush)
        except Exception as exc:
            self.problem = f"progress could not be saved ({exc})"

    def live(self) -> dict[str, float]:
        stats = self._live
        numbers = {name: total + (getattr(stats, name) if stats else 0) for name, total in self.totals.items()}
        numbers["queue_depth"] = self.feed.depth()
        numbers["in_flight"] = self.feed.in_flight()
        numbers["paused"] = 1.0 if self.paused else 0.0
        numbers["retrying"] = stats.retrying if stats else 0
        return numbers

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading; in-flight sends get the runner's grace period; then save and close everything."""
        self.shutdown.set()
        self.control.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.checkpoint()
        self.journal.close()
        self.dead_letter.close()
        self.transport.close()

"""What a run counts (StreamStats) and how it is stopped (RunControl).

Shared by the runner, the batcher and everything that shows a run's progress.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import Interrupted

__all__ = ["RunControl", "StreamStats"]


@dataclass
class StreamStats:
    lines: int = 0  # every line read, blank ones included
    events: int = 0  # events read: one per non-blank line, or one per message of a batch line
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    parked: int = 0
    rendered: int = 0
    skipped: int = 0  # blank lines, and lines an earlier run already recorded
    blank: int = 0  # of skipped: blank lines
    earlier_unresolved: int = 0  # of skipped: still in the dead letter from an earlier run
    unfinished: int = 0  # interrupted before an outcome: not recorded, delivered by a rerun
    requests: int = 0
    retries: int = 0
    lookups: int = 0
    throttled: int = 0  # 429 answers: each slowed the rate, none counted as a failure
    retrying: int = 0  # right now, sleeping before another attempt
    bytes_read: int = 0
    total_bytes: int | None = None  # the input's size, when it is a file: progress and ETA
    drop_reasons: Counter[str] = field(default_factory=Counter)
    #: Per batched step: bulk requests built (``batches``), the events they carried
    #: (``items``, ``max_items``) and their encoded size (``bytes``, ``max_bytes``).
    batches: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Why the destination stopped (a `stop` answer), with the hint that names the fix.
    stopped: str | None = None
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    #: Lines skipped because the journal had them: progress rates leave them out.
    resumed: int = 0

    @property
    def unresolved(self) -> int:
        """Events of this input in the dead letter: failed or parked now, or in an earlier run."""
        return self.failed + self.parked + self.earlier_unresolved

    def count_batch(self, step: str, items: int, size: int) -> None:
        """One bulk request of ``items`` events and ``size`` bytes (callers hold the run's lock)."""
        numbers = self.batches.setdefault(step, {"batches": 0, "items": 0, "max_items": 0, "bytes": 0, "max_bytes": 0})
        numbers["batches"] += 1
        numbers["items"] += items
        numbers["bytes"] += size
        numbers["max_items"] = max(numbers["max_items"], items)
        numbers["max_bytes"] = max(numbers["max_bytes"], size)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "events": self.events,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "failed": self.failed,
            "parked": self.parked,
            "rendered": self.rendered,
            "skipped": self.skipped,
            "blank": self.blank,
            "earlier_unresolved": self.earlier_unresolved,
            "unresolved": self.unresolved,
            "unfinished": self.unfinished,
            "requests": self.requests,
            "retries": self.retries,
            "lookups": self.lookups,
            "throttled": self.throttled,
            "drop_reasons": dict(self.drop_reasons.most_common()),
            "batches": {step: dict(numbers) for step, numbers in self.batches.items()},
            "failures": self.failures,
            "stopped": self.stopped,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds, 1) if self.seconds else None,
        }


class RunControl:
    """Shared by the reader, the workers and whoever may stop the run (a signal handler)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        """Stop reading; in-flight sends get GRACE_SECONDS to finish, waits end at once."""
        self.stopping.set()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.stopping.set()

    def sleep(self, seconds: float) -> None:
        """A retry's wait, cut short by a stop (the event is then left unfinished)."""
        if self.stopping.wait(seconds):
            raise Interrupted("the run is stopping")

"""Stream NDJSON events through a Deliverer with bounded concurrency, losing nothing.

One reader decides each event (pure and fast) and hands sends to N workers.
Events with the same order key always go to the same worker, which delivers them
one at a time, so an unsubscribe can never overtake the subscribe before it,
whatever the concurrency. Queues are bounded, so memory stays flat.

Every event read ends as exactly one of: delivered, dropped, failed, parked,
rendered (a dry run), skipped (recorded by an earlier run of the same journal),
or unfinished (the run was interrupted before its outcome; nothing is recorded,
so the same command delivers it next time). A line holds one event, or, for a
Segment batch envelope (``{"batch": [...]}``), one per message; a blank line is
counted as skipped::

    events + blank = delivered + dropped + failed + parked + rendered + skipped + unfinished

When an event fails, its contact is *blocked*: the contact's later events are
parked in the dead letter behind it, in order, so that a replay delivers them as
they came. When an answer says the destination can take nothing (a ``stop``
response rule: a wrong key, a missing list), every later event is parked with
that reason; with ``pause_on_stop`` (a long-running service) the run stops
instead, leaving that event and the rest unrecorded in the source, so they are
delivered once the destination is fixed. If an outcome cannot be recorded, the run
stops at once with a RecordError: nothing is marked done that was not kept.

When the preset batches (and batching is on), decided events go to a Batcher instead
of the workers (``relay.delivery.batcher``): same outcomes, same order per contact,
fewer requests. Jobs a crashed run left open are polled first, never sent again.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import Interrupted, RecordError
from .batcher import Batcher
from .deadletter import DeadLetter
from .deliver import Deliverer, Outcome, Tally
from .input import MAX_DEPTH, MAX_LINE_BYTES, Item, events_of, read_lines
from .journal import UNRESOLVED, Journal, event_key
from .stats import RunControl, StreamStats

__all__ = ["MAX_DEPTH", "MAX_LINE_BYTES", "RunControl", "StreamStats", "read_lines", "run_stream"]

#: After a stop is asked for, how long in-flight sends may take to finish before they are abandoned.
GRACE_SECONDS = 2.0

_STOP = object()


def run_stream(
    deliverer: Deliverer,
    lines: Iterable[tuple[int, bytes]],
    *,
    journal: Journal,
    dead_letter: DeadLetter,
    concurrency: int = 1,
    progress: Callable[[StreamStats], None] | None = None,
    progress_every: float = 0.1,
    control: RunControl | None = None,
    replaying: bool = False,
    total_bytes: int | None = None,
    on_recorded: Callable[[int, str, str], None] | None = None,
    pause_on_stop: bool = False,
) -> StreamStats:
    """Deliver every line; see the module docstring for the outcomes and their invariant.

    ``replaying`` re-delivers dead-lettered lines: a line the journal holds as failed or
    parked is sent again (and resolved when it succeeds), not skipped. ``on_recorded(line,
    key, status)`` is called, from any worker, once a line's outcome is durably recorded (by
    this run, or by an earlier one: then with the status the journal holds). ``pause_on_stop``
    makes a `stop` answer end the run (``stats.stopped`` says why) with that event unrecorded,
    instead of parking it and everything after it in the dead letter.
    """
    control = control or RunControl()
    stats = StreamStats(total_bytes=total_bytes)
    lock = threading.Lock()
    preset = deliverer.preset.name
    blocked: dict[str, int] = {} if replaying else journal.blocked_keys()
    stopped_at: list[int] = []

    def on_retry(delta: int) -> None:
        with lock:
            stats.retrying += delta

    deliverer.on_retry = on_retry

    def record(item: Item, outcome: Outcome) -> None:
        # The dead letter first, durably, then the journal: nothing is marked done that is not kept.
        if outcome.status in UNRESOLVED:
            dead_letter.write(
                {
                    "key": item.key,
                    "preset": preset,
                    "line": item.line,
                    "outcome": outcome.status,
                    "order_key": item.order_key,
                    "error": outcome.reason,
                    "status": outcome.http_status,
                    "attempts": outcome.attempts,
                    "hint": outcome.hint,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "batch_index": item.batch_index,
                    "event": item.event,
                },
                item.raw,
            )
        journal.record(
            item.key, preset, item.line, outcome.status, outcome.reason, outcome.http_status, outcome.attempts,
            item.order_key,
        )  # fmt: skip
        if on_recorded is not None:
            on_recorded(item.line, item.key, outcome.status)
        with lock:
            setattr(stats, outcome.status, getattr(stats, outcome.status) + 1)
            stats.requests += outcome.requests
            stats.retries += outcome.retries
            stats.lookups += outcome.lookups
            stats.throttled += outcome.throttled
            if outcome.status == "dropped":
                stats.drop_reasons[outcome.reason or "?"] += 1
            if outcome.status == "failed" and len(stats.failures) < 20:
                stats.failures.append(
                    {"line": item.line, "error": outcome.reason, "status": outcome.http_status, "hint": outcome.hint}
                )

    def parked_reason(item: Item) -> str | None:
        with lock:
            if stats.stopped is not None and not pause_on_stop:
                return f"parked: the destination stopped at line {stopped_at[0]} ({stats.stopped})"
            if item.order_key is not None and item.order_key in blocked:
                return (
                    f"parked behind line {blocked[item.order_key]}: an earlier event for this contact "
                    "is in the dead letter; replay it first"
                )
        return None

    def settle(item: Item, outcome: Outcome | None) -> None:
        """Record ``outcome`` (None: leave the event unrecorded), after the contact and stop rules."""
        if outcome is None:
            return
        if outcome.status == "failed":
            with lock:
                if outcome.stop and pause_on_stop:
                    if stats.stopped is None:
                        stats.stopped = outcome.hint or outcome.reason or "the destination refused the request"
                        stopped_at.append(item.line)
                    control.stop()
                    return  # unrecorded: delivered when the run resumes
                if item.order_key is not None:
                    blocked.setdefault(item.order_key, item.line)
                if outcome.stop and stats.stopped is None:
                    stats.stopped = outcome.hint or outcome.reason or "the destination refused the request"
                    stopped_at.append(item.line)
        record(item, outcome)

    def deliver(item: Item) -> None:
        """Process one decided event and record its outcome (any worker, or the reader)."""
        if control.stopping.is_set():
            return  # left unfinished: not recorded, delivered by a rerun
        assert item.plan is not None
        reason = parked_reason(item)
        if reason is not None:
            outcome = Outcome("parked", reason=reason)
        else:
            try:
                outcome = deliverer.process(item.plan, journal.steps(item.key))
            except Interrupted:
                return
            except Exception as exc:  # a bug must not lose the event: record it as failed
                outcome = Outcome("failed", reason=f"internal error: {type(exc).__name__}: {exc}")
        settle(item, outcome)

    def tallied(tally: Tally) -> None:
        with lock:
            stats.requests += tally.requests
            stats.retries += tally.retries
            stats.lookups += tally.lookups
            stats.throttled += tally.throttled

    def batched(step: str, items: int, size: int) -> None:
        with lock:
            stats.count_batch(step, items, size)

    def guarded(action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:  # the journal or the dead letter failed: stop loudly
            control.fail(exc)

    batcher = None
    if deliverer.batching:
        batcher = Batcher(
            deliverer, journal, settle=settle, parked_reason=parked_reason, stopping=control.stopping,
            halted=lambda: stats.stopped is not None, concurrency=concurrency, on_tally=tallied, on_batch=batched,
        )  # fmt: skip
        if not deliverer.dry_run:
            try:
                batcher.resume()
            except Interrupted:
                control.stop()
        batcher.start()
    workers = max(1, concurrency) if not deliverer.dry_run and batcher is None else 1
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=64) for _ in range(workers)]

    def work(inbox: queue.Queue[Any]) -> None:
        while True:
            item = inbox.get()
            if item is _STOP:
                return
            if control.error is None:
                guarded(deliver, item)

    threads = (
        [threading.Thread(target=work, args=(q,), name=f"relay-worker-{i}", daemon=True) for i, q in enumerate(queues)]
        if workers > 1
        else []
    )
    for thread in threads:
        thread.start()

    def hand_over(index: int, value: Any) -> bool:
        """Queue ``value`` for worker ``index``; False when the run stops while waiting."""
        while True:
            try:
                queues[index].put(value, timeout=0.1)
                return True
            except queue.Full:
                if control.stopping.is_set() and value is not _STOP:
                    return False

    def skip_recorded(line: int, key: str, earlier: str) -> None:
        stats.events += 1
        stats.skipped += 1
        stats.resumed += 1
        stats.earlier_unresolved += earlier in UNRESOLVED
        if on_recorded is not None:
            on_recorded(line, key, earlier)

    round_robin = 0
    last_report = 0.0
    try:
        for line, raw in lines:
            if control.stopping.is_set():
                break
            stats.lines += 1
            stats.bytes_read += len(raw)
            key = event_key(preset, line, raw)
            if not raw.strip():
                stats.skipped += 1
                stats.blank += 1
                guarded(journal.record, key, preset, line, "blank", None, None, 0)
                continue
            earlier = journal.status(key) if not replaying else None
            if earlier is not None:  # a plain line an earlier run recorded
                skip_recorded(line, key, earlier)
                continue
            for item, problem in events_of(preset, line, key, raw):
                stats.events += 1
                earlier = journal.status(item.key)
                if earlier is not None and not (replaying and earlier in UNRESOLVED):
                    skip_recorded(line, item.key, earlier)
                    continue
                if problem is not None:
                    guarded(record, item, Outcome("failed", reason=f"line {line}: {problem}"))
                    continue
                plan = deliverer.decide(item.event, f"line {line}")
                if isinstance(plan, Outcome):  # the event could not be decided
                    guarded(record, item, plan)
                    continue
                item.plan, item.order_key = plan, plan.order_key
                if plan.action == "drop":
                    guarded(record, item, deliverer.process(plan))
                elif batcher is not None:
                    try:
                        if not batcher.add(item):
                            break
                    except Exception as exc:  # the journal or the dead letter failed: stop loudly
                        control.fail(exc)
                        break
                elif workers == 1:
                    # One worker: deliver right here. Order holds trivially, and no thread hand-off
                    # per event (worth ~15% of throughput against a fast endpoint).
                    guarded(deliver, item)
                else:
                    if item.order_key is not None:
                        index = zlib.crc32(item.order_key.encode()) % workers
                    else:
                        index, round_robin = round_robin, (round_robin + 1) % workers
                    if not hand_over(index, item):
                        break
            if progress is not None and time.monotonic() - last_report >= progress_every:
                last_report = time.monotonic()
                stats.seconds = last_report - stats.started
                progress(stats)
    finally:
        if batcher is not None:
            try:
                batcher.close(GRACE_SECONDS if control.stopping.is_set() else None)
            except Exception as exc:
                control.fail(exc)
        for index in range(len(queues)):
            hand_over(index, _STOP)
        grace = time.monotonic() + GRACE_SECONDS
        for thread in threads:
            thread.join(timeout=max(0.0, grace - time.monotonic()) if control.stopping.is_set() else None)
    with lock:
        recorded = stats.delivered + stats.dropped + stats.failed + stats.parked + stats.rendered
        stats.unfinished = stats.events - recorded - (stats.skipped - stats.blank)
    stats.interrupted = control.stopping.is_set() and control.error is None
    stats.seconds = time.monotonic() - stats.started
    if progress is not None:
        progress(stats)
    if control.error is not None:
        raise RecordError(
            f"an outcome could not be recorded ({type(control.error).__name__}: {control.error}); the run "
            "stopped. Everything recorded before it is kept: fix the cause and run the same command again."
        ) from control.error
    return stats

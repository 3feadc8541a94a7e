"""Scale-out on Kafka (confluent-kafka): collectors produce, ``relay worker`` processes deliver.

Each destination has its own topic, ``<topic>.<destination>``, and its own
consumer group, ``<group>.<destination>``, so a destination's pace is its own,
as with the embedded queue. A collector produces every accepted event to every
destination's topic, keyed by that destination's contact key (the preset's
``order_by``, else ``userId``/``anonymousId``), with an idempotent ``acks=all``
producer, and answers 200 only once every copy is acknowledged.

A worker consumes each destination's topic in its group; the key's partition
gives per-contact order. Offsets are committed per partition only up to the
lowest offset whose outcome is recorded (a ``Watermark``), after the journal is
committed. The journal lives in ``data_dir``, shared by the workers, so after a
failover the new owner of a partition skips what was recorded past the committed
offset: at-least-once, with nothing recorded re-sent. A failing contact is
parked by the delivery loop (dead letter), so it never blocks its partition.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ..delivery.runner import GRACE_SECONDS, RunControl
from ..errors import RelayError
from ..runtime.decide import decide
from .config import Destination, ServiceConfig
from .logs import ServiceLog
from .queue import Appended, claim_ids, open_db
from .queue import Message as Accepted
from .watermark import Watermark

__all__ = ["KafkaFeed", "KafkaSink", "contact_key", "position"]

#: A position is the partition and the offset in one integer, unique and stable per record.
_OFFSET_BITS = 40
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1
_LOG = logging.getLogger("relay.kafka")


def position(partition: int, offset: int) -> int:
    return (partition << _OFFSET_BITS) | offset


def _client_config(config: ServiceConfig, **extra: Any) -> dict[str, Any]:
    assert config.kafka is not None
    return {"bootstrap.servers": config.kafka.bootstrap_servers, "logger": _LOG, **config.kafka.config, **extra}


def contact_key(destination: Destination, event: dict[str, Any]) -> bytes:
    """The destination's contact key for ``event``: its ``order_by``, else userId/anonymousId/messageId."""
    try:
        plan = decide(destination.preset, event, destination.settings, destination=destination.name)
        key = plan.order_key
    except RelayError:
        key = None
    if key is None:
        key = next((str(event[k]) for k in ("userId", "anonymousId", "messageId") if event.get(k)), "")
    return key.encode("utf-8")


class KafkaSink:
    """The collector's sink on Kafka: one copy per destination topic, all acknowledged (acks=all)."""

    def __init__(self, config: ServiceConfig) -> None:
        assert config.kafka is not None
        self.config = config
        self.kafka = config.kafka
        self.producer = Producer(_client_config(config, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5}))
        # De-duplication is per collector: its own SQLite memory of messageIds.
        self._seen = open_db(config.data_dir / "collector-seen.sqlite")
        self._seen_lock = threading.Lock()
        self._error: str | None = None
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="relay-kafka-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            self.producer.poll(0.1)

    async def store(self, source: str, messages: list[Accepted]) -> Appended:
        loop = asyncio.get_running_loop()
        fresh = await asyncio.to_thread(self._unseen, source, messages)
        waits: list[asyncio.Future[None]] = []
        for message in fresh:
            for destination in self.config.destinations:
                done: asyncio.Future[None] = loop.create_future()
                self.producer.produce(
                    self.kafka.topic_for(destination.name),
                    value=message.raw,
                    key=contact_key(destination, message.event),
                    on_delivery=_resolver(loop, done),
                )
                waits.append(done)
        try:
            await asyncio.gather(*waits)
        except Exception as exc:
            self._error = f"Kafka did not acknowledge events ({exc})"
            raise
        self._error = None
        await asyncio.to_thread(self._remember, source, [m.message_id for m in fresh])
        return Appended(len(fresh), len(messages) - len(fresh))

    def _unseen(self, source: str, messages: list[Accepted]) -> list[Accepted]:
        if self.config.dedup_window <= 0:
            return messages
        with self._seen_lock:
            seen = {
                row[0]
                for m in messages
                for row in self._seen.execute(
                    "SELECT message_id FROM seen WHERE source = ? AND message_id = ?", (source, m.message_id)
                )
            }
        out, ids = [], set()
        for message in messages:  # the same id twice in one request is stored once too
            if message.message_id not in seen and message.message_id not in ids:
                out.append(message)
                ids.add(message.message_id)
        return out

    def _remember(self, source: str, ids: list[str]) -> None:
        import time

        with self._seen_lock:
            self._seen.execute("BEGIN")
            claim_ids(self._seen, source, ids, time.time(), self.config.dedup_window)
            self._seen.execute("DELETE FROM seen WHERE received < ?", (time.time() - self.config.dedup_window,))
            self._seen.execute("COMMIT")

    def problem(self) -> str | None:
        return self._error

    def close(self) -> None:
        self.producer.flush(10)
        self._running = False
        self._poller.join(timeout=5)
        self._seen.close()


def _resolver(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> Callable[[Any, Any], None]:
    def delivered(error: KafkaError | None, _message: Message) -> None:
        def settle() -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(RuntimeError(error.str()))
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(settle)

    return delivered


@dataclass(frozen=True)
class _Fetched:
    generation: int
    position: int
    raw: bytes
    timestamp: float


class KafkaFeed:
    """One destination's partitions on this worker (a ``Feed``): positions are (partition, offset)."""

    def __init__(self, config: ServiceConfig, destination: str, log: ServiceLog | None = None) -> None:
        assert config.kafka is not None
        self.destination = destination
        self.log = log or ServiceLog("off")
        self.topic = config.kafka.topic_for(destination)
        self.max_in_flight = config.kafka.max_in_flight
        self.consumer = Consumer(
            _client_config(
                config,
                **{
                    "group.id": config.kafka.group_for(destination),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "allow.auto.create.topics": True,
                },
            )
        )
        self._buffer: queue.Queue[_Fetched] = queue.Queue()
        self._lock = threading.RLock()
        self._generation = 0
        self._watermarks: dict[int, Watermark] = {}
        self._pending: dict[int, _Fetched] = {}  # handed out, not yet recorded: re-yielded by the next run
        self._to_commit: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._control: RunControl | None = None
        self._idle = threading.Event()
        self._idle.set()
        #: Cleared while a rebalance takes partitions away: no run may hand anything out meanwhile.
        self._resume = threading.Event()
        self._resume.set()
        self._before_saving: Callable[[], None] = lambda: None
        self._running = True
        self._paused = False
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        self._poller = threading.Thread(target=self._poll, name=f"relay-kafka-{destination}", daemon=True)
        self._poller.start()

    # -- the poll thread owns the consumer ---------------------------------------------------
    def _poll(self) -> None:
        while self._running:
            self._backpressure()
            message = self.consumer.poll(0.2)
            if message is not None and message.error() is None:
                self._fetched(message)
            self._commit()
        self._commit()

    def _backpressure(self) -> None:
        held = self._buffer.qsize() + len(self._pending)
        assignment = self.consumer.assignment()
        if not self._paused and held >= self.max_in_flight and assignment:
            self.consumer.pause(assignment)
            self._paused = True
        elif self._paused and held < self.max_in_flight // 2:
            self.consumer.resume(assignment)
            self._paused = False

    def _fetched(self, message: Message) -> None:
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        at = position(partition, offset)
        with self._lock:
            # Consumption starts at the committed offset: everything before the first fetched is done.
            mark = self._watermarks.setdefault(partition, Watermark(offset - 1))
            if offset <= mark.committed:
                return
            _kind, stamp = message.timestamp()
            raw = message.value() or b""
            self._buffer.put(_Fetched(self._generation, at, raw, stamp / 1000 if stamp > 0 else 0.0))

    def _commit(self, partitions: set[int] | None = None) -> None:
        with self._lock:
            due = {p: o for p, o in self._to_commit.items() if partitions is None or p in partitions}
            for partition in due:
                del self._to_commit[partition]
        offsets = [TopicPartition(self.topic, p, o) for p, o in due.items() if self._committed.get(p) != o]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # no coordinator right now: committed again with the next checkpoint
            _LOG.warning("offset commit failed: %s", exc)
            return
        for tp in offsets:
            self._committed[tp.partition] = tp.offset

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.log.event(
            "partitions_assigned", destination=self.destination, partitions=sorted(tp.partition for tp in partitions)
        )

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Stop the run (sends in flight get their grace), save what is recorded, forget the rest:
        the next owner, or this worker again, starts at the committed offsets."""
        self._resume.clear()
        control = self._control
        if control is not None:
            control.stop()
        self._idle.wait(GRACE_SECONDS + 3)
        self.checkpoint(self._before_saving)
        self._commit()
        with self._lock:
            self._generation += 1
            self._watermarks.clear()
            self._pending.clear()
            self._committed.clear()
            while not self._buffer.empty():
                self._buffer.get_nowait()
        self._resume.set()
        self.log.event(
            "partitions_revoked", destination=self.destination, partitions=sorted(tp.partition for tp in partitions)
        )

    # -- the destination's delivery loop -----------------------------------------------------
    def lines(self, control: RunControl) -> Iterator[tuple[int, bytes]]:
        self._control = control
        while not self._resume.wait(0.2):
            if control.stopping.is_set():
                return
        self._idle.clear()
        try:
            with self._lock:
                generation = self._generation
                redo = sorted(self._pending.values(), key=lambda f: f.position)
                for mark in self._watermarks.values():
                    mark.reset()
                for fetched in redo:
                    self._hand_out(fetched)
            for fetched in redo:
                if control.stopping.is_set() or generation != self._generation:
                    return
                yield fetched.position, fetched.raw
            while not control.stopping.is_set():
                try:
                    fetched = self._buffer.get(timeout=0.2)
                except queue.Empty:
                    continue
                with self._lock:
                    if fetched.generation != self._generation:
                        continue
                    self._hand_out(fetched)
                    self._pending[fetched.position] = fetched
                yield fetched.position, fetched.raw
        finally:
            self._idle.set()

    def _hand_out(self, fetched: _Fetched) -> None:
        self._watermarks[fetched.position >> _OFFSET_BITS].handed_out(fetched.position & _OFFSET_MASK)

    def recorded(self, position: int) -> None:
        with self._lock:
            self._pending.pop(position, None)
            mark = self._watermarks.get(position >> _OFFSET_BITS)
            if mark is not None:
                mark.recorded(position & _OFFSET_MASK)

    def received_at(self, position: int) -> float | None:
        fetched = self._pending.get(position)
        return fetched.timestamp if fetched is not None and fetched.timestamp else None

    def checkpoint(self, before_saving: Callable[[], None]) -> None:
        self._before_saving = before_saving
        with self._lock:
            marks = {p: m.committed + 1 for p, m in self._watermarks.items()}
        before_saving()  # the journal is committed before any offset past it is
        with self._lock:
            self._to_commit.update(marks)

    def depth(self) -> int:
        return self._buffer.qsize() + len(self._pending)

    def in_flight(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        self._running = False
        self._poller.join(timeout=10)
        self.consumer.close()

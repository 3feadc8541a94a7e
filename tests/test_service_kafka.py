"""Scale-out on Kafka, against librdkafka's built-in mock cluster (no broker needed).

The mock cluster lives in this test process; `relay serve` (collecting only) and two
`relay worker` processes join it through its loopback addresses. One worker is killed
mid-stream: every event must still be delivered, each contact's events in order, and
nothing whose outcome was recorded before the kill may be sent again.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer

from relay.fakes import FakeServer
from tests.service_helpers import WRITE_KEY, RelayProcess, env, wait_until, write_config
from tests.test_service_e2e import assert_in_order_per_contact, deliveries, events_for, hook_fake, post

#: Fast failure detection for the test: a dead worker's partitions move after this long.
FAST_GROUPS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


@pytest.fixture(scope="module")
def brokers() -> Iterator[str]:
    quiet = logging.getLogger("relay.tests.kafka-mock")
    quiet.setLevel(logging.CRITICAL)
    cluster = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "", "logger": quiet})
    metadata = cluster.list_topics(timeout=10)
    yield ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    cluster.flush(5)


@pytest.fixture()
def hook() -> Iterator[FakeServer]:
    fake = hook_fake(latency=(0.02, 0.06))
    yield fake
    fake.stop()


def kafka_config(tmp_path: Path, brokers: str, hook: FakeServer) -> tuple[Path, str]:
    topic = f"relay-test-{uuid.uuid4().hex[:8]}"
    queue = {"type": "kafka", "bootstrap_servers": brokers, "topic": topic, "group": topic, "config": FAST_GROUPS}
    destination = {"name": "hook", "preset": "webhook", "settings": {"url": f"{hook.url}/hook", "payload": "event"},
                   "concurrency": 2}  # fmt: skip
    return write_config(tmp_path, [destination], queue=queue, worker={"port": 0}), f"{topic}.hook"


def worker(config: Path, name: str) -> RelayProcess:
    return RelayProcess("worker", "--config", str(config), "--name", name, environ=env(), ready="consuming")


def assigned(process: RelayProcess) -> list[int]:
    """The partitions the worker holds now, from its logs."""
    held: list[int] = []
    for entry in process.json_logs():
        if entry.get("event") == "partitions_assigned":
            held = entry["partitions"]
        elif entry.get("event") == "partitions_revoked":
            held = []
    return held


def message_ids_by_position(brokers: str, topic: str, count: int) -> dict[int, str]:
    """Read the whole topic back: (partition << 40 | offset) -> messageId."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    found: dict[int, str] = {}
    try:
        wait_until(lambda: _read(consumer, found) >= count, 60, "the topic to be read back")
    finally:
        consumer.close()
    return found


def _read(consumer: Consumer, found: dict[int, str]) -> int:
    message = consumer.poll(0.5)
    if message is not None and message.error() is None:
        found[(message.partition() << 40) | message.offset()] = json.loads(message.value())["messageId"]
    return len(found)


def recorded_positions(data: Path) -> set[int]:
    db = sqlite3.connect(data / "hook.journal.sqlite")
    try:
        return {line for (line,) in db.execute("SELECT line FROM outcomes WHERE status = 'delivered'")}
    finally:
        db.close()


def test_collector_and_workers_on_the_mock_cluster_survive_losing_a_worker(
    tmp_path: Path, brokers: str, hook: FakeServer
) -> None:
    config, topic = kafka_config(tmp_path, brokers, hook)
    events = events_for(contacts=12, per_contact=20)
    with RelayProcess("serve", "--config", str(config)) as collector:
        post(collector.url, events)  # answered 200 once Kafka acknowledged every copy (acks=all)
        answer = requests.post(
            f"{collector.url}/v1/batch", json={"batch": events[:5]}, auth=(WRITE_KEY, ""), timeout=10
        )
        assert answer.json() == {"success": True, "accepted": 0, "duplicates": 5}
    with worker(config, "w1") as w1, worker(config, "w2") as w2:
        wait_until(lambda: assigned(w1) and assigned(w2), 90, "both workers to hold partitions")
        wait_until(lambda: len(recorded_positions(tmp_path / "data")) >= 40, 60, "deliveries to be under way")
        held_by_w1 = assigned(w1)
        w1.signal(signal.SIGKILL)
        w1.wait()
        recorded_at_kill = recorded_positions(tmp_path / "data")
        sent_at_kill = len(deliveries(hook))
        expected = {e["messageId"] for e in events}
        wait_until(lambda: set(deliveries(hook)) == expected, 120, "every event, after the failover")
        taken_over = wait_until(lambda: len(assigned(w2)) > 0 and assigned(w2), 30, "w2 to hold partitions")
        metrics = requests.get(f"{w2.url}/metrics", timeout=5).text
        assert 'relay_events_total{destination="hook",outcome="delivered"}' in metrics
    by_position = message_ids_by_position(brokers, topic, len(events))
    sent = deliveries(hook)
    counts = {m: sent.count(m) for m in set(sent)}
    recorded_ids = {by_position[p] for p in recorded_at_kill}
    assert sent_at_kill < len(events), "the kill came mid-stream"
    assert all(counts[m] == 1 for m in recorded_ids), "an event recorded before the kill was sent again"
    assert_in_order_per_contact(sent)
    resent = len(sent) - len(events)
    report: dict[str, Any] = {
        "events": len(events),
        "partitions of the killed worker": held_by_w1,
        "partitions of the survivor after": taken_over,
        "delivered before the kill": sent_at_kill,
        "recorded before the kill": len(recorded_at_kill),
        "delivered in all": len(sent),
        "re-sent (delivered, not yet recorded at the kill)": resent,
        "recorded and re-sent": sum(counts[m] > 1 for m in recorded_ids),
    }
    print("\nKafka failover:", json.dumps(report))

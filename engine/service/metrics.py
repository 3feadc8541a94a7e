"""Prometheus metrics, through prometheus-client, on a registry of the service's own.

Labels are only names from the config (sources, destinations), route templates
and status codes: never a write key, a setting, an event value or a raw path (a
hostile client could otherwise grow the label set without bound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Live", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds from acceptance to a recorded outcome: from a fast fake to a day of retries.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

#: Per-destination values read when scraped: name -> {metric: value}.
Live = Callable[[], dict[str, dict[str, float]]]

_LIVE_COUNTERS = {
    "requests": "HTTP requests sent to the destination, lookups and retries included",
    "retries": "Requests sent again after a 429, a 5xx, a timeout or a connection error",
    "throttled": "429 answers (each slowed the destination's rate)",
    "lookups": "Read-before-write requests",
}
_LIVE_GAUGES = {
    "queue_depth": "Events accepted that the destination has not finished yet",
    "in_flight": "Events handed to the destination's senders and not yet recorded",
    "paused": "1 while the destination is paused after an answer that means stop",
    "retrying": "Requests waiting right now before another attempt",
}


class _LiveCollector(Collector):
    def __init__(self, live: Live) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        values = self.live()
        for name, documentation in _LIVE_COUNTERS.items():
            family = CounterMetricFamily(f"relay_destination_{name}", documentation, labels=["destination"])
            for destination, numbers in values.items():
                family.add_metric([destination], numbers.get(name, 0.0))
            yield family
        for name, documentation in _LIVE_GAUGES.items():
            gauge = GaugeMetricFamily(f"relay_{name}", documentation, labels=["destination"])
            for destination, numbers in values.items():
                gauge.add_metric([destination], numbers.get(name, 0.0))
            yield gauge


class Metrics:
    """The service's metrics, in two registries: the collector's (and its HTTP server's), and
    delivery's. When delivery runs in another process, ``elsewhere`` supplies delivery's families
    (that process's ``render_delivery()``, Prometheus text) at every scrape instead."""

    def __init__(self, *, elsewhere: Callable[[], bytes] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.delivery = CollectorRegistry(auto_describe=True)
        self.elsewhere = elsewhere
        self.http = Counter(
            "relay_http_requests", "HTTP answers of the collector", ["route", "status"], registry=self.registry
        )
        self.received = Counter("relay_events_received", "Events accepted", ["source"], registry=self.registry)
        self.duplicates = Counter(
            "relay_events_duplicate", "Events accepted again within the de-duplication window (stored once)",
            ["source"], registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter(
            "relay_events_rejected", "Requests refused, by reason", ["reason"], registry=self.registry
        )
        self.ack = Histogram(
            "relay_ack_seconds", "From a request's arrival to its answer, durable commit included", ["route"],
            buckets=ACK_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.outcomes = Counter(
            "relay_events", "Outcomes per destination: delivered, dropped, failed, parked",
            ["destination", "outcome"], registry=self.delivery,
        )  # fmt: skip
        self.latency = Histogram(
            "relay_delivery_seconds", "From acceptance to the recorded outcome", ["destination"],
            buckets=LATENCY_BUCKETS, registry=self.delivery,
        )  # fmt: skip

    def watch(self, live: Live) -> None:
        """Read per-destination counters and gauges from ``live`` at every scrape."""
        self.delivery.register(_LiveCollector(live))

    def outcome(self, destination: str, status: str, seconds: float | None) -> None:
        self.outcomes.labels(destination, status).inc()
        if seconds is not None:
            self.latency.labels(destination).observe(max(0.0, seconds))

    def render_delivery(self) -> bytes:
        return generate_latest(self.delivery)

    def render(self) -> bytes:
        delivery = self.elsewhere() if self.elsewhere is not None else self.render_delivery()
        return generate_latest(self.registry) + delivery

    def sample(self, name: str, labels: dict[str, Any] | None = None) -> float:
        """One sample's value (0 when absent): for tests and the demo's summary."""
        for registry in (self.registry, self.delivery):
            value = registry.get_sample_value(name, labels or {})
            if value is not None:
                return float(value)
        return 0.0

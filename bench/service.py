"""``python -m bench --only service``: relay as a service, ingest and end to end.

1. Ingest: events/s accepted through ``/v1/batch`` (100 events a call) by `relay serve` with the
   embedded queue (WAL, grouped commits, ``synchronous=FULL``: every answer waits for an fsync),
   at 1, 8 and 32 concurrent clients, with p50 and p99 acknowledgement latency. The baseline is
   a raw SQLite loop inserting the same bytes, 100 rows a transaction, with the same fsync policy.
   The clients run in their own process (keep-alive http.client: see ``_CLIENT``). The service's
   one destination drops every event through a ``filter`` that is false, journaling each drop,
   and keeps doing so during the measurement, in its delivery process (at a lower CPU priority
   than the collector, as `relay serve` always runs it).
2. End to end: events posted to `relay serve` until every one is delivered to the Mailjet fake
   (its own process), against `relay send` of the same events to the same kind of fake.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.events import generate

__all__ = ["figure_service"]

ROOT = Path(__file__).resolve().parent.parent
WRITE_KEY = "wk-bench-0123456789"
BATCH = 100
Row = dict[str, Any]

#: The load generator, run in its own process: N threads, each posting its share of the bodies on
#: one keep-alive connection with the standard library's http.client. (It was requests, which
#: spends ~12 µs of CPU an event building and sending a 74 KB post, three times http.client's:
#: alone against a server that answers at once it topped out near 100,000 events/s, and on two
#: cores it took that CPU from the server being measured.)
_CLIENT = r"""
import base64, http.client, json, sys, threading, time
from urllib.parse import urlsplit
url, key, clients, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
bodies = [line.encode() for line in open(path, encoding="utf-8").read().splitlines()]
where = urlsplit(url)
basic = base64.b64encode(f"{key}:".encode()).decode()
headers = {"Content-Type": "application/json", "Authorization": "Basic " + basic}
latencies, lock = [], threading.Lock()
def run(share):
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    for body in share:
        start = time.perf_counter()
        connection.request("POST", "/v1/batch", body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read()
        took = time.perf_counter() - start
        assert answer.status == 200, text
        with lock:
            latencies.append(took)
    connection.close()
threads = [threading.Thread(target=run, args=(bodies[i::clients],)) for i in range(clients)]
start = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"seconds": time.perf_counter() - start, "latencies": sorted(latencies)}))
"""


@contextmanager
def _serve(folder: Path, destinations: list[dict[str, Any]]) -> Iterator[str]:
    config = folder / "relay.yaml"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(folder / "data"),
                "server": {"port": 0, "log": "off", "dedup_window": 86400},
                "sources": [{"name": "bench", "write_key": WRITE_KEY}],
                "destinations": destinations,
            }
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--config", str(config)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        url = next((word for word in line.split() if word.startswith("http://")), None)
        if url is None:  # it refused its configuration: say why, not StopIteration
            raise RuntimeError(f"relay serve did not start: {line.strip()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _bodies(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps({"batch": events[i : i + BATCH]}) for i in range(0, len(events), BATCH)]


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _raw_sqlite(events: list[dict[str, Any]], folder: Path) -> float:
    """Events/s of a plain insert loop: the same bytes, WAL, synchronous=FULL, a commit per 100 rows."""
    raws = [json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() for e in events]
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(folder / "raw.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, raw BLOB)")
    start = time.perf_counter()
    for i in range(0, len(raws), BATCH):
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (received, source, raw) VALUES (?, 'bench', ?)",
                       [(time.time(), raw) for raw in raws[i : i + BATCH]])  # fmt: skip
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    db.close()
    return len(raws) / seconds


def _ingest(quick: bool) -> list[Row]:
    count = 4_000 if quick else 20_000
    events = list(generate(count, seed=11))
    rows = []
    for clients in (1, 8, 32):
        with tempfile.TemporaryDirectory(prefix="relay-bench-ingest-") as scratch:
            folder = Path(scratch)
            # The baseline's fsync cost swings on a shared machine: the median of three runs.
            baseline = sorted(_raw_sqlite(events, folder / f"raw{i}") for i in range(3))[1]
            path = folder / "bodies.ndjson"
            path.write_text("\n".join(_bodies(events)), encoding="utf-8")
            sink = [{"name": "sink", "preset": "webhook", "settings": {"url": "http://127.0.0.1:9/unused"},
                     "filter": "false"}]  # fmt: skip
            with _serve(folder, sink) as url:
                out = subprocess.run(
                    [sys.executable, "-c", _CLIENT, url, WRITE_KEY, str(clients), str(path)],
                    cwd=ROOT, check=True, capture_output=True, text=True,
                )  # fmt: skip
            result = json.loads(out.stdout)
            ours = count / result["seconds"]
            p50, p99 = (_quantile(result["latencies"], q) * 1000 for q in (0.5, 0.99))
            rows.append(
                {
                    "figure": f"ingest /v1/batch, {clients} client{'s' if clients > 1 else ''}",
                    "relay": f"{ours:,.0f} events/s",
                    "baseline": f"{baseline:,.0f} events/s (raw SQLite, same fsync)",
                    "ratio": ours / baseline,
                    "goal": ">= 0.5x",
                    "met": ours / baseline >= 0.5,
                    "note": f"{count:,} events, 100 a call; ack p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                }
            )
    return rows


@contextmanager
def _mailjet_fake(config: dict[str, Any]) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fake.json"
        path.write_text(json.dumps(config))
        process = subprocess.Popen(
            [sys.executable, "-m", "relay", "fake", "mailjet", "--config", str(path)],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            yield process.stderr.readline().split("listening on ", 1)[1].split()[0]
        finally:
            process.terminate()
            process.wait(timeout=10)


def _end_to_end(quick: bool) -> list[Row]:
    import io

    import requests

    import relay
    from relay import RunOptions, deliver_stream, load_preset

    preset = load_preset("mailjet")
    settings = {"api_key": "pub-bench", "secret_key": "sec-bench", "list_id": 10001}
    resolved = preset.resolve_settings(settings, environ={})
    fake_config = {**settings, "lists": [10001], "properties": dict(preset.constants["properties"])}
    count = 400 if quick else 2_000
    events = [e for e in generate(count * 3, seed=5) if relay.render(preset, e, resolved, now=0).action == "send"]
    events = events[:count]
    fast = {**settings, "relay": {"rate_limit": {"rate": 10000, "burst": 1000}}}
    with _mailjet_fake(fake_config) as fake_url, tempfile.TemporaryDirectory() as scratch:
        destination = {"name": "mailjet", "preset": "mailjet", "settings": fast, "concurrency": 8,
                       "redirect": {"https://api.mailjet.com": fake_url}}  # fmt: skip
        with _serve(Path(scratch), [destination]) as url:
            session = requests.Session()
            start = time.perf_counter()
            for body in _bodies(events):
                assert session.post(f"{url}/v1/batch", data=body, auth=(WRITE_KEY, "")).status_code == 200
            done = threading.Event()
            while not done.wait(0.05):
                text = session.get(f"{url}/metrics").text
                if f'relay_events_total{{destination="mailjet",outcome="delivered"}} {len(events)}.0' in text:
                    break
            ours = len(events) / (time.perf_counter() - start)
    with _mailjet_fake(fake_config) as fake_url, tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        stats = deliver_stream(
            preset, resolved, io.BytesIO("".join(json.dumps(e) + "\n" for e in events).encode()),
            options=RunOptions(rate=10000, burst=1000), concurrency=8, journal_path=Path(scratch) / "j.sqlite",
            dead_letter_path=Path(scratch) / "d.ndjson", redirects={"https://api.mailjet.com": fake_url},
        )  # fmt: skip
        theirs = len(events) / (time.perf_counter() - start)
        assert stats.delivered == len(events), stats.as_dict()
    return [
        {
            "figure": "end to end, serve -> Mailjet fake",
            "relay": f"{ours:,.0f} events/s",
            "baseline": f"{theirs:,.0f} events/s (relay send, same fake)",
            "ratio": ours / theirs,
            "goal": "report",
            "met": None,
            "note": f"{len(events):,} events posted 100 a call until all delivered; concurrency 8 both",
        }
    ]


def figure_service(quick: bool) -> list[Row]:
    os.environ.setdefault("RELAY_NO_CACHE", "1")
    return _ingest(quick) + _end_to_end(quick)

"""Delivery throughput and client CPU: ``relay`` delivering a stream against raw HTTP clients.

The Mailjet fake runs in its own process, so it shares no GIL with the client measured, and its
own CPU is reported too (a busy fake would make every client look alike). Three clients send
the same events, with the same bodies and headers, at concurrency 1, 8 and 32, round by round:

- relay: ``deliver_stream`` (decide, build, journal, retries, rate limit off);
- the baseline: ``http.client`` on one keep-alive connection per worker thread, reading every
  response in full: the cheapest correct client in Python;
- ``requests``, set up as relay's transport used to be (a pooled Session, ``trust_env`` off,
  connect/read timeouts, no redirects), sending relay's pre-rendered requests: reported, so the
  gain from relay's own keep-alive transport (``relay.delivery.transport.HTTPTransport``) shows.

Client CPU per request is this process's CPU time (every thread's) over the run.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import relay
from relay import CompiledPreset, Request, RunOptions, Settings, deliver_stream, load_preset
from relay.bundled import presets_dir

from .common import NOW, ROOT, Row, child_env, plural, require, row
from .events import generate

__all__ = ["Fake", "Run", "figure_delivery", "http_client_run", "relay_run", "requests_run"]

MAILJET = "https://api.mailjet.com"
GOAL = 0.7


@dataclass(frozen=True)
class Run:
    """One client's pass over the events."""

    events: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.events * 1e6


class Fake:
    """A running fake vendor process: its URL, and the CPU it has used so far."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def cpu_seconds(self) -> float | None:
        """utime + stime from /proc (Linux); None where there is no /proc."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_process(config: dict[str, Any]) -> Iterator[Fake]:
    """The Mailjet fake in its own process (``bench.fake``), so it shares no GIL with the client measured."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fake.json"
        path.write_text(json.dumps(config))
        with subprocess.Popen(
            [sys.executable, "-m", "bench.fake", "mailjet", str(path)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        ) as process:
            try:
                assert process.stderr is not None
                line = process.stderr.readline()
                yield Fake(process, line.split("listening on ", 1)[1].split()[0])
            finally:
                process.terminate()


def _timed(work: Callable[[], None], events: int) -> Run:
    cpu, start = time.process_time(), time.perf_counter()
    work()
    return Run(events, time.perf_counter() - start, time.process_time() - cpu)


def relay_run(preset: CompiledPreset, settings: Settings, lines: bytes, events: int, url: str, concurrency: int) -> Run:
    with tempfile.TemporaryDirectory() as scratch:

        def deliver() -> None:
            stats = deliver_stream(
                preset,
                settings,
                io.BytesIO(lines),
                options=RunOptions(rate=1e6, burst=1000, batch=False),  # per request, as the baselines send
                concurrency=concurrency,
                journal_path=Path(scratch) / "journal.sqlite",
                dead_letter_path=Path(scratch) / "dead.ndjson",
                redirects={MAILJET: url},
            )
            require(stats.delivered == events, f"relay delivered {stats.as_dict()}")

        return _timed(deliver, events)


def _in_threads(requests: list[Request], concurrency: int, send_all: Callable[[list[Request]], None]) -> None:
    chunks = [requests[index::concurrency] for index in range(concurrency)]
    threads = [threading.Thread(target=send_all, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def http_client_run(requests: list[Request], url: str, concurrency: int) -> Run:
    """One keep-alive ``http.client`` connection per worker thread."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port

    def send_all(chunk: list[Request]) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            for request in chunk:
                connection.request(request.method, urlsplit(request.url).path, request.content, request.headers)
                answer = connection.getresponse()
                content = answer.read()
                require(answer.status == 201, f"http.client got {answer.status}: {content[:200]!r}")
        finally:
            connection.close()

    return _timed(lambda: _in_threads(requests, concurrency, send_all), len(requests))


def requests_run(requests: list[Request], url: str, concurrency: int) -> Run:
    """``requests`` as relay's transport used to set it up, one Session shared by the workers."""
    import requests as requests_library
    from requests.adapters import HTTPAdapter

    session = requests_library.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(concurrency, 1), max_retries=0)
    session.mount("http://", adapter)
    session.trust_env = False

    def send_all(chunk: list[Request]) -> None:
        for request in chunk:
            answer = session.request(
                request.method,
                request.url.replace(MAILJET, url),
                headers=request.headers,
                data=request.content,
                timeout=(5.0, 30.0),
                allow_redirects=False,
            )
            require(answer.status_code == 201, f"requests got {answer.status_code}: {answer.text[:200]}")

    try:
        return _timed(lambda: _in_threads(requests, concurrency, send_all), len(requests))
    finally:
        session.close()


def figure_delivery(quick: bool) -> list[Row]:
    preset = load_preset(presets_dir() / "mailjet")
    raw_settings = {"api_key": "pub-bench", "secret_key": "sec-bench", "list_id": 10001}
    settings = preset.resolve_settings(raw_settings, environ={})
    fake_config = {**raw_settings, "lists": [10001], "properties": dict(preset.constants["properties"])}
    count, rounds = (300, 1) if quick else (2_000, 3)
    decisions = [(event, relay.render(preset, event, settings, now=NOW)) for event in generate(count * 3)]
    sends = [(event, decision.request) for event, decision in decisions if decision.request is not None][:count]
    lines = "".join(json.dumps(event) + "\n" for event, _ in sends).encode()
    requests = [request for _, request in sends]
    rows: list[Row] = []
    for concurrency in (1, 8, 32):
        with fake_process(fake_config) as fake:
            fake_cpu, started = fake.cpu_seconds(), time.perf_counter()
            clients: list[tuple[str, Callable[[], Run]]] = [
                ("relay", lambda: relay_run(preset, settings, lines, len(requests), fake.url, concurrency)),  # noqa: B023
                ("http.client", lambda: http_client_run(requests, fake.url, concurrency)),  # noqa: B023
                ("requests", lambda: requests_run(requests, fake.url, concurrency)),  # noqa: B023
            ]
            runs = _rounds(clients, rounds)
            fake_busy = _busy(fake, fake_cpu, started)
        rows += _delivery_rows(concurrency, runs, fake_busy)
    return rows


def _rounds(clients: list[tuple[str, Callable[[], Run]]], rounds: int) -> dict[str, list[Run]]:
    """Every client once a round, the order rotated each round."""
    runs: dict[str, list[Run]] = {name: [] for name, _ in clients}
    for index in range(rounds):
        shift = index % len(clients)
        for name, run in clients[shift:] + clients[:shift]:
            runs[name].append(run())
    return runs


def _busy(fake: Fake, cpu_before: float | None, started: float) -> str:
    cpu_after = fake.cpu_seconds()
    if cpu_before is None or cpu_after is None:
        return ""
    return f"; the fake was {100 * (cpu_after - cpu_before) / (time.perf_counter() - started):.0f}% busy"


def _cell(runs: list[Run], what: str = "") -> str:
    per_second = statistics.median(run.per_second for run in runs)
    cpu = statistics.median(run.cpu_us for run in runs)
    return f"{per_second:,.0f} events/s, {cpu:,.0f} µs CPU/req" + (f" ({what})" if what else "")


def _delivery_rows(concurrency: int, runs: dict[str, list[Run]], fake_busy: str) -> list[Row]:
    ours = runs["relay"]
    rows = []
    for name, what, goal in (
        ("http.client", "http.client keep-alive", GOAL),
        ("requests", "a pooled requests.Session", None),
    ):
        ratios = [mine.per_second / theirs.per_second for mine, theirs in zip(ours, runs[name], strict=True)]
        ratio = statistics.median(ratios)
        rows.append(
            row(
                f"delivery, concurrency {concurrency}" + ("" if goal else ", vs requests"),
                _cell(ours),
                _cell(runs[name], what),
                ratio=ratio,
                spread=f"{min(ratios):.2f}-{max(ratios):.2f}x",
                goal=f">= {goal}x events/s" if goal else "report",
                met=ratio >= goal if goal else None,
                note=(
                    f"{ours[0].events:,} Mailjet sends, {plural(len(ours), 'round')}, journal on "
                    f"(relay's CPU also decides, builds and journals each event){fake_busy}"
                ),
            )
        )
    return rows

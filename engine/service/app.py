"""Wiring: ``relay serve`` (collector, queue, delivery) and ``relay worker`` (Kafka delivery).

``relay serve`` on the embedded queue delivers in a child process (process.py); the
demo and the tests run delivery in threads of the same process (``delivery="threads"``).

Shutdown, on SIGTERM or SIGINT: the listening socket closes at once (stop
accepting), requests in flight get ``shutdown_timeout`` seconds to finish (their
events are committed before they are answered), then every destination stops:
sends in flight get the delivery loop's grace period, outcomes are recorded,
progress is saved, and the process exits 0. A second signal quits at once.
After a SIGKILL, the next start resumes each destination at its lowest
unrecorded event; what was recorded after it is skipped through the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .collector import Collector, Sink
from .config import ServiceConfig
from .fanout import DestinationRunner
from .logs import ServiceLog
from .metrics import Metrics
from .ops import build_app
from .process import DeliveryProcess
from .queue import Appended, EmbeddedQueue, Message, QueueFeed

__all__ = ["QueueSink", "Service", "listen", "serve_app", "worker_service"]

#: The most a request's line and headers may take (h11's default bound is 16 KiB too).
MAX_HEAD_BYTES = 16 * 1024
#: How often each destination's progress (its committed position) is saved while it runs.
CHECKPOINT_EVERY = 0.5


class QueueSink:
    """The embedded queue as the collector's sink: ``store`` returns once the group commit is fsynced."""

    def __init__(self, queue: EmbeddedQueue) -> None:
        self.queue = queue

    async def store(self, source: str, messages: list[Message]) -> Appended:
        return await asyncio.wrap_future(self.queue.append(source, messages))

    def problem(self) -> str | None:
        return self.queue.error


class Service:
    """Everything one process runs: the collector (``collect``) and/or the destinations' delivery."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        collect: bool = True,
        log_stream: Any = None,
        delivery: str = "threads",
        poll: float | None = None,
    ) -> None:
        """``delivery`` on the embedded queue: ``threads`` in this process, or ``process`` (see process.py).
        ``poll``: another process appends to the embedded queue (this one delivers)."""
        self.config = config
        self.log = ServiceLog(config.log, config.secrets, log_stream)
        process = DeliveryProcess(config, self.log) if delivery == "process" and config.kafka is None else None
        self.delivery = process
        self.metrics = Metrics(elsewhere=(lambda: process.report()[0]) if process else None)
        self.queue: EmbeddedQueue | None = None
        self.runners: list[DestinationRunner] = []
        self.sink: Sink | None = None
        self._stopping = threading.Event()
        self._closers: list[Callable[[], None]] = []
        names = [d.name for d in config.destinations]
        if config.kafka is None:
            self.queue = EmbeddedQueue(
                config.data_dir / "queue.sqlite", names, dedup_window=config.dedup_window, retention=config.retention,
                poll=poll,
            )  # fmt: skip
            self.sink = QueueSink(self.queue)
            for destination in config.destinations if self.delivery is None else ():
                feed = QueueFeed(self.queue, destination.name)
                self.runners.append(DestinationRunner(destination, feed, config.data_dir, self.metrics, self.log))
        elif collect:
            from .kafka import KafkaSink

            kafka_sink = KafkaSink(config)
            self.sink = kafka_sink
            self._closers.append(kafka_sink.close)
        self.collector = Collector(config, self.sink, self.metrics, self.log) if collect and self.sink else None
        if self.delivery is None:
            self.metrics.watch(lambda: {runner.name: runner.live() for runner in self.runners})
        routes = self.collector.routes() if self.collector else []
        direct = self.collector.endpoints() if self.collector else {}
        self.app = build_app(routes, self.metrics, self.log, self.problems, config.max_connections, direct)

    def add_runner(self, runner: DestinationRunner) -> None:
        self.runners.append(runner)

    def problems(self) -> list[str]:
        """Why the service is not ready (empty when it is): /ready answers 503 with them."""
        found = []
        if self._stopping.is_set():
            found.append("shutting down")
        if self.sink is not None and (problem := self.sink.problem()):
            found.append(problem)
        for runner in self.runners:
            if runner.paused:
                found.append(f"destination {runner.name} is paused: {runner.paused}")
            if runner.problem:
                found.append(f"destination {runner.name}: {runner.problem}")
        if self.delivery is not None and not self._stopping.is_set():
            found.extend(self.delivery.report()[1])
        return found

    def start(self) -> None:
        for runner in self.runners:
            runner.start()
        if self.delivery is not None:
            self.delivery.start()
        threading.Thread(target=self._checkpoints, name="relay-checkpoints", daemon=True).start()

    def _checkpoints(self) -> None:
        while not self._stopping.wait(CHECKPOINT_EVERY):
            for runner in self.runners:
                runner.checkpoint()

    def begin_shutdown(self) -> None:
        """Refuse new events (503) from now on; requests already reading finish."""
        self._stopping.set()
        if self.collector is not None:
            self.collector.accepting = False

    def stop(self) -> None:
        """Stop every destination (sends in flight get their grace), save progress, close the queue."""
        self.begin_shutdown()
        threads = [threading.Thread(target=runner.stop) for runner in self.runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.delivery is not None:  # after the collector: every request it answered is in the queue
            self.delivery.stop()
        for close in self._closers:
            close()
        if self.queue is not None:
            self.queue.close()
        self.log.event("stopped")


def worker_service(config: ServiceConfig, name: str | None = None) -> Service:
    """A Service that delivers from Kafka (``relay worker``): one consumer group member per destination."""
    from .kafka import KafkaFeed

    worker = name or f"{socket.gethostname()}-{os.getpid()}"
    service = Service(config, collect=False)
    for destination in config.destinations:
        feed = KafkaFeed(config, destination.name, service.log)
        service.add_runner(
            DestinationRunner(destination, feed, config.data_dir, service.metrics, service.log, worker=worker)
        )
        service._closers.append(feed.close)
    return service


class _Server(uvicorn.Server):
    """uvicorn, with our own signal handling: it must not re-raise SIGTERM once it has stopped
    (uvicorn does, to kill the process), because the destinations still have to drain."""

    on_signal: Callable[[], None] = staticmethod(lambda: None)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: Any) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            self.on_signal()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp: a C parser, a third of h11's cost per request), with
    a bound on a request's head, which neither bounds: past ``MAX_HEAD_BYTES`` of request line
    and headers, the answer is a 400 and the connection is closed, so headers cannot fill memory."""

    _head_bytes = 0
    _in_head = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._in_head = 0, True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head:  # all of ``data`` was head (at most one read past the bound is held)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.send_400_response(f"The request line and headers are over {MAX_HEAD_BYTES:,} bytes.")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket bound now, so the address (port 0 picks one) is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by every accepted connection. Without it, an answer's headers and body leave in two
    # segments and the client's delayed ACK holds the second back: ~40 ms on every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_app(service: Service, sock: socket.socket, *, announce: Callable[[str], None] | None = None) -> None:
    """Serve ``service.app`` on ``sock`` until SIGTERM/SIGINT (or ``service.begin_shutdown``), then stop."""
    config = service.config
    server = _Server(
        uvicorn.Config(
            service.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=_BoundedHttpTools,
            loop="auto",  # uvloop where it is installed (every platform but Windows)
            server_header=False,
            date_header=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=max(1, round(config.shutdown_timeout)),
        )
    )
    server.on_signal = service.begin_shutdown
    host, port = sock.getsockname()[:2]
    service.start()
    if announce is not None:
        announce(f"http://{host}:{port}")
    watcher = threading.Thread(target=_exit_when_stopping, args=(service, server), daemon=True)
    watcher.start()
    try:
        server.run(sockets=[sock])
    finally:
        service.stop()
        sys.stderr.flush()


def _exit_when_stopping(service: Service, server: uvicorn.Server) -> None:
    service._stopping.wait()
    server.should_exit = True

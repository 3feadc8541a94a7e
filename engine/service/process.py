"""Delivery in a process of its own, beside the collector, on the same embedded queue.

`relay serve` runs the collector in one process and every destination's delivery in a
child process (``python -m relay.service.deliverer CONFIG``). Python runs one thread at a
time per process: sharing one, delivery took the collector's turns, and a busy collector
took delivery's. Apart, each has its own interpreter and its own core, and the queue
(SQLite in WAL mode: one writer, readers that never block it) is the only thing they share.

- **Priority.** The child lowers its own CPU priority (``DELIVERY_NICE``): when both want the
  machine, the collector (clients waiting on an answer) goes first and delivery (a durable
  backlog) takes the rest; when the collector is idle, delivery has it all.
- **New events.** The child reads the queue every ``POLL_SECONDS`` while it has nothing to do.
- **Progress.** The child saves each destination's cursor in the queue; the collector never does.
- **Metrics and readiness.** At every scrape of /metrics or /ready, the collector asks the child
  (``report`` on its stdin) for its metrics (Prometheus text) and problems (a paused destination,
  outcomes it cannot record), and serves them as its own: the answer (a line on the child's
  stdout) counts every event the collector acknowledged before the scrape.
- **Stopping.** The child ignores SIGINT and SIGTERM: the collector finishes its requests
  first, then writes ``stop`` on the child's stdin, and the child stops like the in-process
  delivery (sends in flight get their grace, outcomes and cursors are saved). If the collector
  dies (SIGKILL), the child's stdin closes and it exits at once, as if killed with it: what
  it had not recorded is delivered again after the restart, nothing recorded is.
- **Crash.** If the child dies, the collector says so on /ready and starts another.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from ..errors import InputError
from .config import ServiceConfig
from .logs import ServiceLog

__all__ = ["DELIVERY_NICE", "POLL_SECONDS", "REPORT_SECONDS", "DeliveryProcess"]

#: How much the delivery process lowers its CPU priority (``nice``): 0 is the collector's.
DELIVERY_NICE = 10
#: How often the delivery process looks for new events when it has none.
POLL_SECONDS = 0.02
#: How often the delivery process reports its metrics and problems unasked.
REPORT_SECONDS = 1.0
#: How long a scrape waits for the delivery process's report before it shows the last one.
REPORT_TIMEOUT = 2.0
#: How long the collector waits for the delivery process to stop before it kills it.
STOP_SECONDS = 30.0
#: How long the collector waits before it starts a delivery process that died.
RESTART_SECONDS = 1.0


class DeliveryProcess:
    """The collector's side: starts the child, asks for its reports, stops it, restarts it if it dies."""

    def __init__(self, config: ServiceConfig, log: ServiceLog) -> None:
        self.config = config
        self.log = log
        self._metrics = b""
        self._problems: list[str] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._reports = threading.Condition()
        self._asked = self._answered = 0
        self._started = threading.Event()
        self._exit_code: int | None = None
        self._watcher = threading.Thread(target=self._watch, name="relay-delivery-process", daemon=True)

    def start(self) -> None:
        """Start the child and wait for its first report: a child that cannot start is an error now."""
        self._watcher.start()
        self._started.wait()
        if self._exit_code is not None:
            raise InputError(f"the delivery process could not start (exit {self._exit_code}); see above")

    def report(self) -> tuple[bytes, list[str]]:
        """The child's metrics (Prometheus text) and problems, as of now: what the collector
        acknowledged before this call is counted (the last report if the child does not answer)."""
        with self._reports:
            self._asked += 1
            wanted = self._asked
        try:
            with self._lock:
                child = self._child
                if child is not None and child.stdin is not None and not self._stopping.is_set():
                    child.stdin.write(b"report\n")
                    child.stdin.flush()
        except OSError:  # it is gone: the watcher says so
            pass
        else:
            with self._reports:
                self._reports.wait_for(lambda: self._answered >= wanted, timeout=REPORT_TIMEOUT)
        return self._metrics, self._problems

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "relay.service.deliverer", str(self.config.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    break
                child = self._child = self._spawn()
                with self._reports:  # a new child counts the requests it reads from 0
                    self._asked = self._answered = 0
            assert child.stdout is not None
            for line in child.stdout:  # {"metrics", "problems", "answers": report requests read so far}
                report = json.loads(line)
                with self._reports:
                    self._metrics, self._problems = report["metrics"].encode(), report["problems"]
                    self._answered = max(self._answered, min(self._asked, report["answers"]))
                    self._reports.notify_all()
                self._started.set()
            code = child.wait()
            if not self._started.is_set():  # it never started: start() says so
                self._exit_code = code
                break
            if self._stopping.is_set():
                break
            with self._reports:
                self._metrics, self._problems = b"", [f"the delivery process exited ({code}); it starts again"]
                self._answered = self._asked
                self._reports.notify_all()
            self.log.warning("delivery_exited", code=code, restart_in=RESTART_SECONDS)
            self._stopping.wait(RESTART_SECONDS)
        self._started.set()

    def stop(self) -> None:
        """Ask the child to stop (it saves its progress), wait for it, kill it past STOP_SECONDS."""
        with self._lock:
            self._stopping.set()
            child = self._child
        if child is None:
            return
        try:
            assert child.stdin is not None
            child.stdin.write(b"stop\n")
            child.stdin.close()
        except OSError:  # it is already gone
            pass
        try:
            child.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self._watcher.join(5)

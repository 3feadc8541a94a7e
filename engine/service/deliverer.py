"""The delivery process's entry point: ``python -m relay.service.deliverer CONFIG`` (see process.py).

It delivers for every destination of the config, on the embedded queue the collector fills,
until the collector writes ``stop`` on its stdin; it reports on its stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import IO, Any

from ..errors import RelayError
from .app import Service
from .config import load_config
from .process import DELIVERY_NICE, POLL_SECONDS, REPORT_SECONDS

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Deliver for every destination of the config at ``argv[0]`` until the collector says ``stop``."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # the collector decides when delivery stops
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(os, "nice"):
        os.nice(DELIVERY_NICE)
    reports = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the reports only
    try:
        service = Service(load_config(argv[0]), collect=False, poll=POLL_SECONDS)
    except RelayError as exc:  # a journal or a dead letter that cannot be written: said once, plainly
        print(f"relay serve: delivery: {exc}", file=sys.stderr)
        return 2
    commands = _Commands()
    threading.Thread(target=commands.listen, args=(sys.stdin.buffer,), name="relay-lifeline", daemon=True).start()
    service.start()
    while not commands.stop.is_set():
        _report(reports, service, commands.asked)
        commands.wake.wait(REPORT_SECONDS)
        commands.wake.clear()
    service.stop()
    _report(reports, service, commands.asked)
    return 0


class _Commands:
    """What the collector writes on stdin: ``report`` (answer now), ``stop``; its end: the collector died."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.asked = 0

    def listen(self, lines: IO[bytes]) -> None:
        for line in lines:
            if line.strip() == b"report":
                self.asked += 1  # read before the report is built: the answer counts what came before
                self.wake.set()
            elif line.strip() == b"stop":
                self.stop.set()
                self.wake.set()
                return
        os._exit(70)  # the collector is gone (killed): end now, as if killed with it


def _report(out: Any, service: Service, answers: int) -> None:
    metrics = service.metrics.render_delivery().decode()
    report = {"metrics": metrics, "problems": service.problems(), "answers": answers}
    try:
        out.write(json.dumps(report).encode() + b"\n")
        out.flush()
    except OSError:  # the collector is gone: the lifeline ends this process
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

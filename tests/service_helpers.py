"""Helpers for the service tests: configs, a `relay serve`/`relay worker` subprocess, waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relay.fakes import FakeServer, MailgunFake, MailjetFake
from tests.delivery_helpers import MAILGUN_SETTINGS, MAILJET_SETTINGS
from tests.paths import ROOT

WRITE_KEY = "wk-test-0123456789"
OTHER_KEY = "wk-other-9876543210"


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it is truthy; fail (never assert a time) if the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_config(folder: Path, destinations: list[dict[str, Any]], **sections: Any) -> Path:
    """A relay.yaml (JSON is YAML) with one source, the destinations, and any other sections."""
    server = {"port": 0, "log": "json", **sections.pop("server", {})}
    config = {
        "data_dir": str(folder / "data"),
        "server": server,
        "sources": [{"name": "web", "write_key": {"env": "TEST_WRITE_KEY"}}, {"name": "app", "write_key": OTHER_KEY}],
        "destinations": destinations,
        **sections,
    }
    path = folder / "relay.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TEST_WRITE_KEY": WRITE_KEY, "RELAY_NO_CACHE": "1", **extra}


def vendor_fakes() -> tuple[FakeServer, FakeServer]:
    """Mailgun and Mailjet fakes that accept the test settings (properties defined)."""
    from relay import load_preset

    mailjet = load_preset("mailjet")
    mailgun_fake = FakeServer(
        MailgunFake(api_key=MAILGUN_SETTINGS["api_key"], lists=[MAILGUN_SETTINGS["list_address"]])
    )
    mailjet_fake = FakeServer(
        MailjetFake(
            api_key=MAILJET_SETTINGS["api_key"],
            secret_key=MAILJET_SETTINGS["secret_key"],
            lists=[MAILJET_SETTINGS["list_id"]],
            properties=dict(mailjet.constants.get("properties", {})),
        )
    )
    return mailgun_fake.start(), mailjet_fake.start()


def vendor_destinations(mailgun: FakeServer, mailjet: FakeServer, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": "mailgun", "preset": "mailgun", "settings": MAILGUN_SETTINGS, "concurrency": 2,
         "redirect": {"https://api.mailgun.net": mailgun.url}, **extra},
        {"name": "mailjet", "preset": "mailjet", "settings": MAILJET_SETTINGS, "concurrency": 2,
         "redirect": {"https://api.mailjet.com": mailjet.url}, **extra},
    ]  # fmt: skip


class RelayProcess:
    """`relay serve` or `relay worker` in a subprocess; its stderr is collected; always killed at the end."""

    def __init__(self, *args: str, environ: dict[str, str] | None = None, ready: str = "listening on") -> None:
        self.args = args
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", *args],
            cwd=ROOT,
            env=environ or env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = wait_until(lambda: next((x for x in self.lines if ready in x), None) or self._dead(), 60, "startup")
        self.url = next(word for word in line.split() if word.startswith("http://")).rstrip(";")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def _dead(self) -> None:
        if self.process.poll() is not None:
            time.sleep(0.2)
            raise AssertionError(f"relay {' '.join(self.args)} exited {self.process.returncode}:\n" + self.log())

    def log(self) -> str:
        return "\n".join(self.lines)

    def json_logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

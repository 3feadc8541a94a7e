"""Logs of the service: one JSON object a line (``log: json``), plain text, or none.

Every line is built from fields the service chose (route, status, destination,
counts, reasons): never a request header, a write key or a setting. Reasons that
come from a vendor were already redacted by the delivery layer; ``redact`` runs
once more here over every string, against the config's secrets.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from ..runtime.decision import redact

__all__ = ["ServiceLog"]


class ServiceLog:
    def __init__(self, mode: str = "text", secrets: tuple[str, ...] = (), stream: Any = None) -> None:
        self.mode = mode
        self.secrets = secrets
        self.logger = logging.getLogger("relay.service")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
        if mode != "off":
            handler = logging.StreamHandler(stream or sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)

    def event(self, kind: str, level: int = logging.INFO, **fields: Any) -> None:
        if self.mode == "off":
            return
        fields = redact(fields, self.secrets)
        if self.mode == "json":
            record = {"at": _now(), "level": logging.getLevelName(level).lower(), "event": kind, **fields}
            self.logger.log(level, json.dumps(record, ensure_ascii=False, default=str))
        else:
            details = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            self.logger.log(level, f"{_now()} {kind} {details}".rstrip())

    def warning(self, kind: str, **fields: Any) -> None:
        self.event(kind, logging.WARNING, **fields)


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"

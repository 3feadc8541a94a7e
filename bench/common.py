"""What every figure shares: the presets and their settings, the timing of rounds, the rows.

Timing rule: relay and its baseline are timed alike, in interleaved rounds (relay then baseline,
then baseline then relay, ...), and a figure is the median of the per-round ratios, with their
spread beside it, so one noisy block on a shared machine cannot decide it.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from relay import CompiledPreset, Decision, Request, Settings, load_preset
from relay.authoring.golden import discover_cases
from relay.bundled import presets_dir

from .handwritten import Drop, Outcome, Send

__all__ = [
    "NOW",
    "PRESETS",
    "ROOT",
    "Duel",
    "Mismatch",
    "Row",
    "child_env",
    "differences",
    "duel",
    "engine_outcome",
    "identical",
    "load",
    "per_item_us",
    "plural",
    "require",
    "row",
    "settings_for",
    "timer",
]

#: The repository: commands are timed from here.
ROOT = Path(__file__).resolve().parent.parent
PRESETS = ["mailgun", "mailjet", "sendgrid", "brevo", "klaviyo", "webhook", "mailchimp", "customerio", "facebook_capi"]
#: The clock both sides sign with, so signatures compare byte for byte.
NOW = 1_700_000_000.0
Row = dict[str, Any]
Item = TypeVar("Item")


def settings_for(name: str) -> dict[str, Any]:
    """The first golden case's settings; the webhook also gets a bearer token and a signing
    secret, so its figure pays for auth and an HMAC as a real one does."""
    settings = dict(discover_cases(name)[0].settings)
    if name == "webhook":
        settings.update(bearer_token="tok-bench", signing_secret="whsec-bench")
    return settings


def load(name: str) -> tuple[CompiledPreset, Settings]:
    preset = load_preset(presets_dir() / name)
    return preset, preset.resolve_settings(settings_for(name), environ={})


def engine_outcome(decision: Decision) -> Outcome:
    """relay's decision in the baseline's terms: the drop's rule, or the requests in order."""
    if decision.action == "drop":
        return Drop(decision.rule or "")
    return Send(decision.requests)


def differences(ours: Outcome, theirs: Outcome) -> list[str]:
    """How two outcomes differ, field by field (headers in order too); empty when they are the same."""
    if isinstance(ours, Drop) or isinstance(theirs, Drop):
        return [] if ours == theirs else [f"relay {ours!r}, baseline {theirs!r}"]
    if len(ours.requests) != len(theirs.requests):
        return [f"requests: relay {[r.step for r in ours.requests]}, baseline {[r.step for r in theirs.requests]}"]
    found = []
    for number, (mine, yours) in enumerate(zip(ours.requests, theirs.requests, strict=True), 1):
        found += _request_differences(f"request {number}", mine, yours)
    return found


def _request_differences(what: str, ours: Request, theirs: Request) -> list[str]:
    found = []
    for field in ("step", "role", "method", "url", "body", "content", "encoding", "credential_headers"):
        if getattr(ours, field) != getattr(theirs, field):
            found.append(f"{what}.{field}: relay {getattr(ours, field)!r}, baseline {getattr(theirs, field)!r}")
    if list(ours.headers.items()) != list(theirs.headers.items()):
        found.append(f"{what}.headers: relay {ours.headers!r}, baseline {theirs.headers!r}")
    if ours != theirs and not found:
        found.append(f"{what}: relay {ours!r}, baseline {theirs!r}")
    return found


def per_item_us(work: Callable[[Item], object], items: Sequence[Item]) -> float:
    """Microseconds per item for ``work`` over ``items``, after a full collection (so garbage
    left by whoever ran before is not charged here; what ``work`` makes is)."""
    gc.collect()
    start = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - start) / len(items) * 1e6


def timer(work: Callable[[Item], object], make: Callable[[], Sequence[Item]]) -> Callable[[int], float]:
    """A round of ``duel``: ``work`` timed over what ``make`` returns (made before the clock starts)."""
    return lambda _round: per_item_us(work, make())


@dataclass(frozen=True)
class Duel:
    """Per-round figures of relay and its baseline (lower is better, e.g. µs per event)."""

    relay: list[float]
    baseline: list[float]

    @property
    def ratios(self) -> list[float]:
        return [ours / theirs for ours, theirs in zip(self.relay, self.baseline, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> str:
        return f"{min(self.ratios):.2f}-{max(self.ratios):.2f}x"

    @property
    def relay_median(self) -> float:
        return statistics.median(self.relay)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)


def duel(relay_round: Callable[[int], float], baseline_round: Callable[[int], float], rounds: int) -> Duel:
    """Run ``rounds`` interleaved rounds; each callable times one block for round ``r``."""
    ours, theirs = [], []
    for index in range(rounds):
        if index % 2 == 0:
            ours.append(relay_round(index))
            theirs.append(baseline_round(index))
        else:
            theirs.append(baseline_round(index))
            ours.append(relay_round(index))
    return Duel(ours, theirs)


def row(
    figure: str,
    relay_cell: str,
    baseline_cell: str,
    *,
    ratio: float | None,
    spread: str = "",
    goal: str,
    met: bool | None,
    note: str = "",
) -> Row:
    return {
        "figure": figure,
        "relay": relay_cell,
        "baseline": baseline_cell,
        "ratio": ratio,
        "spread": spread,
        "goal": goal,
        "met": met,
        "note": note,
    }


@cache
def _bytecode_dir() -> str:
    folder = tempfile.mkdtemp(prefix="relay-bench-bytecode-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a timed ``relay`` process: as installed, with compiled bytecode kept
    (pip compiles a wheel's modules at install; with ``PYTHONDONTWRITEBYTECODE`` every run would
    compile relay from source). The bytecode goes to a folder of the bench's own, never into the
    checkout; the first run of each command fills it, and figures time later runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _bytecode_dir()
    env.update(extra)
    return env


class Mismatch(AssertionError):
    """relay and a baseline (or a peer) did not do the same work: no figure may be printed."""


def require(condition: bool, message: str) -> None:
    """An assertion that ``python -O`` cannot remove: the bench's checks are its honesty."""
    if not condition:
        raise Mismatch(message)


def identical(stream: Iterable[tuple[Any, Outcome, Outcome]], name: str) -> int:
    """Assert relay and the baseline agree on every item; the number of sends."""
    sends = 0
    for label, ours, theirs in stream:
        found = differences(ours, theirs)
        require(not found, f"{name}: relay and the baseline differ for {label}:\n" + "\n".join(found))
        sends += isinstance(ours, Send)
    return sends

"""Deliver one event: decide, read before write if declared, build, send with retries.

Every event ends in exactly one Outcome: delivered, dropped (with its reason),
failed (with the vendor's message, status, attempts and the preset's hint), or
rendered (a dry run). The runner adds two more: parked (held behind a failed
event of the same contact, or behind a destination that stopped) and unfinished
(interrupted by Ctrl-C; not recorded, so a rerun delivers it).

Retries: 429, 5xx, timeouts and connection errors are retried until the
preset's ``delivery.deadline`` (and ``max_attempts``, when declared). A 429 is
throttling, not failure: it slows the rate limiter and never counts as a failed
attempt. Sleeping, the clock and randomness are injected so tests never wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import DeliveryError, Interrupted, RelayError, TransportError
from ..preset.model import CompiledPreset
from ..preset.settings import Settings
from ..runtime.build import build
from ..runtime.decide import decide
from ..runtime.decision import Plan, Request, redact
from ..runtime.render import NO_REQUEST
from .ratelimit import TokenBucket
from .retry import backoff, classify, parse_body, wait_from_headers
from .transport import Response, Transport

__all__ = ["Deliverer", "Outcome", "StepFailure", "StepProgress", "Tally"]


@dataclass
class Outcome:
    status: str  # delivered | dropped | failed | rendered | parked
    reason: str | None = None
    rule: str | None = None
    http_status: int | str | None = None
    attempts: int = 0
    hint: str | None = None
    requests: int = 0  # HTTP requests made, lookups and retries included
    retries: int = 0
    lookups: int = 0
    throttled: int = 0  # 429 answers seen (each slowed the rate)
    #: The answer means the destination can take nothing more (a `stop` response rule).
    stop: bool = False
    plan: Plan | None = field(default=None, repr=False)
    #: The requests built (and, unless a dry run, sent), in order.
    requests_built: tuple[Request, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class StepFailure:
    """A step's failure the journal kept for an event: a batch job that a crashed run had
    sent reported it after the restart, so the event fails with it, without another send."""

    message: str
    hint: str | None = None
    status: int | str | None = None


class StepProgress(Protocol):
    """Which steps of one event already succeeded or failed (kept by the journal across attempts)."""

    def done(self, step: str) -> bool: ...

    def mark(self, step: str) -> None: ...

    def failure(self, step: str) -> StepFailure | None:
        """A failure recorded for ``step`` (and forgotten once read: a replay sends again)."""
        ...


@dataclass
class Tally:
    """HTTP requests made for one event (or one batch), retries and lookups included."""

    requests: int = 0
    retries: int = 0
    lookups: int = 0
    throttled: int = 0

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.lookups += other.lookups
        self.throttled += other.throttled


def _no_answer(detail: str) -> Callable[[], tuple[Any, str]]:
    return lambda: (None, detail)


def _answer(answer: Response) -> Callable[[], tuple[Any, str]]:
    return lambda: (parse_body(answer.content, answer.content_type), answer.text)


class Deliverer:
    def __init__(
        self,
        preset: CompiledPreset,
        settings: Settings,
        transport: Transport,
        *,
        dry_run: bool = False,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_retry: Callable[[int], None] | None = None,
        max_attempts: int | None = None,
        deadline: float | None = None,
        destination: str | None = None,
        batch: bool = True,
    ) -> None:
        self.preset = preset
        self.settings = settings
        self.transport = transport
        self.dry_run = dry_run
        self.bucket = bucket
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_retry = on_retry
        self.max_attempts = max_attempts or preset.delivery.max_attempts
        self.deadline = deadline or preset.delivery.deadline
        #: The name an event's `integrations` may use for this destination (besides the preset's).
        self.destination = destination
        #: Whether steps that declare a ``batch`` send through the vendor's bulk API.
        self.batch = batch
        self._settings_scope = {"settings": settings.values, "constants": preset.constants}

    @property
    def batching(self) -> bool:
        """True when a stream through this deliverer is batched (the preset batches, and it is on)."""
        return self.batch and self.preset.batches

    def decide(self, event: Any, event_ref: str = "") -> Plan | Outcome:
        """The plan for ``event``, or a failed Outcome when it cannot be decided."""
        try:
            return decide(self.preset, event, self.settings, event_ref=event_ref, destination=self.destination)
        except RelayError as exc:
            return Outcome("failed", reason=str(exc))

    def deliver(self, event: Any, event_ref: str = "") -> Outcome:
        """Decide and process one event."""
        plan = self.decide(event, event_ref)
        return plan if isinstance(plan, Outcome) else self.process(plan)

    def process(self, plan: Plan, progress: StepProgress | None = None) -> Outcome:
        """Carry out a plan: drop it, build its requests (dry run), or send them step by step.

        Each step is built just before it is sent, from what earlier ``read`` steps
        answered. With ``progress`` (the journal's record of this event), a ``write`` or
        ``track`` step that succeeded in an earlier attempt is never sent again.
        """
        if plan.action == "drop":
            return Outcome("dropped", reason=plan.reason, rule=plan.rule, plan=plan)
        tally = Tally()
        answers: dict[str, Any] = {}
        sent: list[Request] = []
        step_name = ""
        done_before = 0
        last_status: int | None = None
        try:
            for step in self.preset.steps:
                step_name = step.name
                if progress is not None and step.role != "read" and progress.done(step.name):
                    if plan.trace is not None:
                        plan.trace.steps.append({"step": step.name, "effect": "sent by an earlier attempt"})
                    done_before += 1
                    continue
                failure = progress.failure(step.name) if progress is not None and step.batch is not None else None
                if failure is not None:
                    raise DeliveryError(failure.message, status=failure.status, hint=failure.hint)
                request = build(self.preset, plan, step, answers=answers, now=self.clock())
                if request is None:
                    continue
                sent.append(request)
                if self.dry_run:
                    continue
                scope = {**plan.context, **answers, "step": step.name}
                answer = self.send(request, tally, scope, missing=step.missing)
                last_status = answer.status
                tally.lookups += step.role == "read"
                if step.bind is not None:
                    missing = answer.status in step.missing
                    answers[step.bind] = None if missing else parse_body(answer.content, answer.content_type)
                if progress is not None and step.role != "read":
                    progress.mark(step.name)
        except DeliveryError as exc:
            return Outcome(
                "failed",
                reason=f"{step_name}: {exc.detail}" if len(self.preset.steps) > 1 else exc.detail,
                rule=plan.rule,
                http_status=exc.status,
                attempts=exc.attempts,
                hint=exc.hint,
                requests=tally.requests,
                retries=tally.retries,
                lookups=tally.lookups,
                throttled=tally.throttled,
                stop=exc.stop,
                plan=plan,
            )
        except Interrupted:
            raise
        except RelayError as exc:
            return Outcome(
                "failed",
                reason=str(exc),
                rule=plan.rule,
                requests=tally.requests,
                retries=tally.retries,
                lookups=tally.lookups,
                plan=plan,
            )
        if not sent and not done_before:
            return Outcome("dropped", reason=NO_REQUEST, rule="requests", plan=plan)
        if self.dry_run:
            return Outcome("rendered", rule=plan.rule, plan=plan, requests_built=tuple(sent))
        return Outcome(
            "delivered",
            rule=plan.rule,
            http_status=last_status,
            attempts=tally.retries + 1,
            requests=tally.requests,
            retries=tally.retries,
            lookups=tally.lookups,
            throttled=tally.throttled,
            plan=plan,
            requests_built=tuple(sent),
        )

    def exchange(self, request: Request) -> Response:
        """Send with the preset's retries and rate limit; a permanent failure is returned, not raised.

        For preflight checks, which want to read a 401 or 404 themselves.
        """
        return self.send(request, Tally(), self._settings_scope, return_failures=True)

    def send(
        self,
        request: Request,
        tally: Tally,
        scope: Mapping[str, Any],
        missing: frozenset[int] = frozenset(),
        return_failures: bool = False,
    ) -> Response:
        """One request with the preset's retries, rate limit and classification: the answer
        when it succeeds, else DeliveryError (``retryable`` once the deadline is past, ``stop``
        for an answer that means stop). ``missing`` statuses are returned as answers."""
        policy = self.preset.delivery
        secrets = self.settings.secrets
        give_up_at = self.clock() + self.deadline
        attempt = failures = 0
        while True:
            attempt += 1
            if self.bucket is not None:
                self.bucket.acquire()
            tally.requests += 1
            headers: dict[str, str] = {}
            answer: Response | None = None
            try:
                answer = self.transport.send(request)
            except TransportError as failure:
                status: int | str = failure.kind
                details = _no_answer(failure.detail)
            else:
                status, headers = answer.status, dict(answer.headers)
                if answer.status in missing:  # "nothing there" is an answer: it earns the rate back too
                    if self.bucket is not None:
                        self.bucket.succeeded()
                    return answer
                details = _answer(answer)
            verdict = classify(policy, status, details, scope)
            if verdict.outcome == "success" and self.bucket is not None:
                self.bucket.succeeded()
            if answer is not None and (
                verdict.outcome == "success" or (return_failures and verdict.outcome in ("fail", "stop"))
            ):
                return answer
            if verdict.outcome == "retry":
                throttled = status == 429
                if throttled:
                    tally.throttled += 1
                    if self.bucket is not None:
                        self.bucket.throttled()
                else:
                    failures += 1
                wait = wait_from_headers(headers, self.clock())
                if wait is None or wait > policy.backoff_max:
                    # Throttled with no hint: the slower bucket paces the retry; keep a little jitter.
                    wait = (
                        self.rng.uniform(0, policy.backoff_base) if throttled else backoff(policy, failures, self.rng)
                    )
                capped = self.max_attempts is not None and failures >= self.max_attempts
                if not capped and self.clock() + wait <= give_up_at:
                    tally.retries += 1
                    if self.on_retry is not None:
                        self.on_retry(1)
                    try:
                        self.sleep(wait)
                    finally:
                        if self.on_retry is not None:
                            self.on_retry(-1)
                    continue
                if not capped:
                    verdict = replace(verdict, message=f"{verdict.message} (still failing after the delivery deadline)")
            raise DeliveryError(
                redact(verdict.message, secrets),
                status=status,
                retryable=verdict.outcome == "retry",
                hint=redact(verdict.hint, secrets) if verdict.hint else None,
                attempts=attempt,
                stop=verdict.outcome == "stop",
            )

"""What the stateful fakes of bulk-capable vendors share (see fakes/README.md).

- **A clock** (``vendor.clock``, ``time.time`` by default) for everything that depends on time,
  so a test can pin it.
- **Asynchronous jobs as state machines.** ``start_job`` queues the work; the job finishes
  after ``JobTiming.polls`` status reads, or ``JobTiming.seconds`` after it was created,
  whichever comes first. Only then are its items applied, in the order jobs finish, so a
  reader sees what the vendor's own readers would. ``settle()`` finishes every job, as the
  vendor eventually does; a same-final-state test calls it before ``contact_state()``.
- **Fault hooks**, also reachable through ``configure`` (``POST /_fake/configure``):
  ``fail_item`` (an item whose JSON holds a text fails with the vendor's per-item error),
  ``fail_next_job`` (the next job fails whole) and ``throttle`` (the next requests get the
  vendor's 429, in its shape and headers).
- **Documented rate limits per endpoint** (``documented_limits=True``): the windows the
  vendor publishes for each route, counted per credential, answered with its 429.

A vendor subclasses ``BulkVendor`` and writes ``_authorized``, ``_unauthorized``, ``_route``,
``rate_limited``, ``job_status``, ``_state``, ``snapshot``, ``table``, ``accept``.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from .server import FakeRequest, FakeResponse, FakeVendor, RateLimit

__all__ = [
    "EMAIL",
    "BulkVendor",
    "ItemError",
    "ItemFault",
    "Job",
    "JobTiming",
    "Reject",
    "RouteLimit",
    "Throttle",
    "iso",
    "json_size",
]

#: An address the fakes take as valid: one `@`, no spaces, a dot in the domain.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Reject(Exception):
    """Raised while handling a request: answer ``response`` (the vendor's error shape).
    Handlers validate everything before they write, so a rejected request changes nothing."""

    def __init__(self, response: FakeResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class JobTiming:
    """When a job finishes: after ``polls`` status reads, or ``seconds`` after it was created
    (``None`` turns that trigger off). The default finishes a job as soon as it is queued;
    ``JobTiming(polls=3, seconds=None)`` walks it through its states, one per read."""

    polls: int = 1
    seconds: float | None = 0.0


@dataclass
class ItemError:
    index: int  # the item's position in its request
    key: str  # what identifies it (an email, an id)
    message: str
    field: str = ""


@dataclass
class Job:
    id: str
    kind: str
    total: int
    created: float
    work: Callable[[Job], list[ItemError]]  # applies the items; answers those that failed
    keys: list[str]  # each item's identifier, for a whole-job failure's report
    polls: int = 0
    finished: float | None = None
    errors: list[ItemError] = field(default_factory=list)
    failure: str | None = None  # the whole job failed (fault hook): nothing was applied
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.finished is not None


@dataclass
class ItemFault:
    contains: str
    message: str = ""
    times: int = 1_000_000  # every matching item, unless limited


@dataclass
class Throttle:
    times: int = 1
    path_contains: str = ""


@dataclass
class RouteLimit:
    """The windows a vendor documents for one route (``method`` ``path`` regex)."""

    method: str
    path: str
    windows: tuple[RateLimit, ...]


class BulkVendor(FakeVendor):
    #: The vendor's documented per-route limits (enforced with ``documented_limits=True``).
    ROUTE_LIMITS: tuple[RouteLimit, ...] = ()

    def __init__(self, *, timing: JobTiming | None = None, documented_limits: bool = False) -> None:
        super().__init__()
        self.clock: Callable[[], float] = time.time
        self.timing = timing or JobTiming()
        self.documented_limits = documented_limits
        self.jobs: dict[str, Job] = {}
        self.item_faults: list[ItemFault] = []
        self.job_faults: deque[str] = deque()
        self.throttles: list[Throttle] = []
        self._hits: dict[tuple[str, str, float], deque[float]] = {}
        self._job_numbers = count(1)

    # -- what a vendor module writes ----------------------------------------------------

    def _authorized(self, request: FakeRequest) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _unauthorized(self, request: FakeRequest) -> FakeResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def _route(self, request: FakeRequest) -> FakeResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def _configure(self, settings: dict[str, Any]) -> None:
        """Vendor-specific seeding (keys, lists, fields)."""

    def job_status(self, job: Job) -> str:  # pragma: no cover - abstract
        """The vendor's name for the job's state now."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def contact_state(self) -> dict[str, Any]:
        """The final state a same-final-state test compares: contacts, lists, consent, events;
        no job ids, counters or times. A copy: later requests do not change it."""
        with self.lock:
            return copy.deepcopy(self._state())

    # -- the request cycle ----------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        self._tick()
        if self._take_throttle(request):
            return self.rate_limited(request, RateLimit(0))
        if not self._authorized(request):
            return self._unauthorized(request)
        window = self._over_documented_limit(request)
        if window is not None:
            return self.rate_limited(request, window)
        try:
            return self._route(request)
        except Reject as rejection:
            return rejection.response

    # -- configuration and fault hooks -----------------------------------------------------

    def configure(self, settings: dict[str, Any]) -> None:
        """Common keys: ``jobs: {polls, seconds}``, ``documented_limits``, ``fail_items: [{contains,
        message}]``, ``fail_next_job: reason``, ``throttle: {times, path_contains}``; the rest
        is the vendor's (keys, lists, fields)."""
        if "jobs" in settings:
            self.timing = JobTiming(**settings["jobs"])
        self.documented_limits = bool(settings.get("documented_limits", self.documented_limits))
        for fault in settings.get("fail_items", []):
            self.fail_item(**fault)
        if settings.get("fail_next_job"):
            self.fail_next_job(str(settings["fail_next_job"]))
        if settings.get("throttle"):
            self.throttle(**settings["throttle"])
        self._configure(settings)

    def fail_item(self, contains: str, message: str = "", times: int = 1_000_000) -> None:
        """Items whose JSON holds ``contains`` fail with the vendor's per-item error."""
        with self.lock:
            self.item_faults.append(ItemFault(contains, message, times))

    def fail_next_job(self, reason: str = "the job could not be processed") -> None:
        with self.lock:
            self.job_faults.append(reason)

    def throttle(self, times: int = 1, path_contains: str = "") -> None:
        """The next ``times`` requests (whose path holds ``path_contains``) get the vendor's 429."""
        with self.lock:
            self.throttles.append(Throttle(times, path_contains))

    def item_fault(self, item: Any) -> str | None:
        """The injected failure for ``item``, if one matches: its message ('' for the vendor's default)."""
        text = json.dumps(item, sort_keys=True) if not isinstance(item, str) else item
        for fault in self.item_faults:
            if fault.times > 0 and fault.contains in text:
                fault.times -= 1
                return fault.message
        return None

    def _take_throttle(self, request: FakeRequest) -> bool:
        for throttle in self.throttles:
            if throttle.times > 0 and throttle.path_contains in request.path:
                throttle.times -= 1
                return True
        return False

    def _over_documented_limit(self, request: FakeRequest) -> RateLimit | None:
        if not self.documented_limits:
            return None
        now, who = time.monotonic(), self.credential(request)
        for route in self.ROUTE_LIMITS:
            if route.method != request.method or not re.fullmatch(route.path, request.path):
                continue
            windows = [
                (limit, self._hits.setdefault((who, route.path, limit.window), deque())) for limit in route.windows
            ]
            for limit, hits in windows:
                while hits and now - hits[0] >= limit.window:
                    hits.popleft()
                if len(hits) >= limit.limit:
                    return limit
            for _limit, hits in windows:
                hits.append(now)
        return None

    # -- asynchronous jobs ------------------------------------------------------------------

    def start_job(
        self, kind: str, keys: list[str], work: Callable[[Job], list[ItemError]], job_id: str | None = None
    ) -> Job:
        """Queue ``work(job)`` (which applies the items and answers those that failed) as a job."""
        number = next(self._job_numbers)
        job = Job(job_id or str(number), kind, len(keys), self.clock(), work, keys)
        if self.job_faults:
            job.failure = self.job_faults.popleft()
        self.jobs[job.id] = job
        if self.timing.polls <= 0 or self.timing.seconds == 0:
            self._finish(job)
        return job

    def poll(self, job: Job) -> Job:
        """A status read: it moves the job on, and finishes it when its time has come."""
        self._tick()
        if not job.done:
            job.polls += 1
            if job.polls >= self.timing.polls:
                self._finish(job)
        return job

    def settle(self) -> None:
        """Finish every job still running, oldest first, as the vendor eventually does."""
        with self.lock:
            for job in list(self.jobs.values()):
                if not job.done:
                    self._finish(job)

    def running_state(self, job: Job, states: tuple[str, ...]) -> str:
        """Which of a vendor's running ``states`` an unfinished job shows: the first until it has
        been read once, then one step further per read."""
        return states[min(max(job.polls - 1, 0), len(states) - 1)]

    def _tick(self) -> None:
        if self.timing.seconds is None:
            return
        now = self.clock()
        for job in list(self.jobs.values()):
            if not job.done and now - job.created >= self.timing.seconds:
                self._finish(job)

    def _finish(self, job: Job) -> None:
        if job.failure is not None:
            job.errors = [ItemError(i, key, job.failure) for i, key in enumerate(job.keys)]
        else:
            job.errors = job.work(job)
        job.finished = self.clock()

    # -- helpers for vendor modules ------------------------------------------------------------

    @staticmethod
    def json_body(request: FakeRequest, refuse: Callable[[str], FakeResponse]) -> Any:
        """The request's JSON body, or ``Reject(refuse(reason))``."""
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise Reject(refuse("the request body is not valid JSON")) from None

    @staticmethod
    def limit_size(request: FakeRequest, limit: int, refuse: Callable[[str], FakeResponse]) -> None:
        if len(request.body) > limit:
            raise Reject(refuse(f"the request body is {len(request.body)} bytes; the limit is {limit}"))


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (how vendors count a per-item size limit)."""
    return len(json.dumps(value, separators=(",", ":")).encode())

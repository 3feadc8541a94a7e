"""A thread-safe token bucket that adapts to throttling (AIMD).

``rate`` tokens per second, at most ``burst`` stored. Throttling is not failure:
a 429 means "slower", so the bucket halves its rate (multiplicative decrease, at
most once per second, so one burst of 429s counts once) and then earns it back
by a small step per success (additive increase), never above the ceiling the
preset or the settings declared. A destination with no declared rate runs
unpaced until its first 429, then starts from half the rate it was sending at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]

#: The slowest the bucket will go: one request every ten seconds.
FLOOR = 0.1
#: Successes needed to climb back from the floor to the ceiling, roughly.
_CLIMB_STEPS = 50


class TokenBucket:
    def __init__(
        self,
        rate: float | None,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (rate is not None and rate <= 0) or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        #: The declared rate (None: unpaced until throttled); adaptation never exceeds it.
        self.ceiling = rate
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()
        self._last_decrease = float("-inf")
        # Requests sent in the current and the previous second: the observed rate, for a
        # destination that declared none and is throttled for the first time.
        self._window = int(self._stamp)
        self._sent_now = 0
        self._sent_before = 0
        self.throttles = 0

    def acquire(self) -> float:
        """Take one token, sleeping until one is there; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._count(now)
            if self.rate is None:
                return 0.0
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        """A 429: halve the rate, at most once a second."""
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if now - self._last_decrease < 1.0:
                return
            self._last_decrease = now
            current = self.rate if self.rate is not None else max(self._sent_before, self._sent_now, 1)
            self.rate = max(FLOOR, current / 2)
            self._tokens = min(self._tokens, 0.0)  # the burst that was throttled is spent

    def succeeded(self) -> None:
        """A success: creep back toward the ceiling."""
        with self._lock:
            if self.rate is None or self.rate == self.ceiling:
                return
            target = self.ceiling if self.ceiling is not None else max(self.rate * 2, 1.0)
            step = max(target / _CLIMB_STEPS, FLOOR / 10)
            self.rate = min(target, self.rate + step) if self.ceiling is not None else self.rate + step

    def _count(self, now: float) -> None:
        second = int(now)
        if second != self._window:
            self._sent_before = self._sent_now if second == self._window + 1 else 0
            self._sent_now = 0
            self._window = second
        self._sent_now += 1

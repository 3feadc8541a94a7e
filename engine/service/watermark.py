"""The committed position: the highest one up to which every event's outcome is recorded.

Outcomes are recorded out of order (contacts go to different senders), so a
position is committed only when every position handed out before it is recorded
too. A crash then resumes at the lowest unrecorded event; what was recorded
after it is skipped through the journal, never sent again.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["Watermark"]


class Watermark:
    def __init__(self, committed: int) -> None:
        #: Every position up to this one (included) is recorded.
        self.committed = committed
        self._outstanding: deque[int] = deque()
        self._done: set[int] = set()
        self._lock = threading.Lock()

    def handed_out(self, position: int) -> None:
        """``position`` was handed to the delivery loop (positions come in increasing order)."""
        with self._lock:
            self._outstanding.append(position)

    def recorded(self, position: int) -> None:
        with self._lock:
            self._done.add(position)
            while self._outstanding and self._outstanding[0] in self._done:
                self.committed = self._outstanding.popleft()
                self._done.discard(self.committed)

    def reset(self) -> None:
        """Forget what was handed out and not recorded: it will be handed out again."""
        with self._lock:
            self._outstanding.clear()
            self._done.clear()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._outstanding)

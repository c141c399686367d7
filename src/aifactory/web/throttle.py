"""Failed sign-ins per client address, in a sliding window: past the limit, that address is
refused (429) until its oldest failure is out of the window. In memory, per process: it slows
a guesser down; it is not an account lockout (which would let anyone lock anyone out)."""

from __future__ import annotations

import threading
from collections import deque


class Throttle:
    def __init__(self, limit: int = 10, window_s: float = 900.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: str, now: float) -> float:
        """Seconds `key` must wait before it may try again (0: it may now)."""
        with self._lock:
            recent = self._recent(key, now)
            if not recent:
                self._failures.pop(key, None)  # the map holds only the last window's guessers
                return 0.0
            return recent[0] + self.window_s - now if len(recent) >= self.limit else 0.0

    def failed(self, key: str, now: float) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(now)
            self._recent(key, now)

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.get(key, deque())
        while found and found[0] <= now - self.window_s:
            found.popleft()
        return found

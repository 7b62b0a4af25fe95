"""A client-side sliding-window rate limiter: at most ``max_calls`` in any ``window`` seconds.

    limiter = SlidingWindowLimiter(100, 60.0)
    limiter.acquire()          # blocks (via the injected sleep) until a call may go out

Gainsight counts 100 synchronous calls a minute in a fixed window; a sliding window of the
same size never exceeds that in any fixed window either.  Pure apart from the injected
``clock`` and ``sleep``, so tests drive it with a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Remembers the start times of the last ``max_calls`` calls."""

    def __init__(
        self,
        max_calls: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or window <= 0:
            raise ValueError("a rate limit needs max_calls >= 1 and window > 0")
        self.max_calls = max_calls
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more call fits in the window, record it, return the seconds waited."""
        waited = 0.0
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._sent) >= self.max_calls:
                oldest = self._sent[0]
                delay = oldest + self.window - now
                if delay > 0:
                    self._sleep(delay)
                    waited = delay
                # The oldest call has now left the window.  Do not re-check with the clock:
                # float rounding (or a clock that a sleep did not move) could spin forever.
                # The new call is stamped no earlier than the moment the oldest expired.
                now = max(self._clock(), oldest + self.window)
                self._expire(now)
                while len(self._sent) >= self.max_calls:
                    self._sent.popleft()
            self._sent.append(now)
        return waited

    def in_window(self) -> int:
        """How many recorded calls are still inside the window (for status and tests)."""
        with self._lock:
            self._expire(self._clock())
            return len(self._sent)

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()

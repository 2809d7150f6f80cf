"""Pacing calls to AWS quotas that are shared with other callers (the console, CI/CD, other tools)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` calls a second on average, at most ``burst`` at once; thread-safe.

    ``acquire()`` blocks until a call may go, unless the wait would end after ``deadline`` (a
    ``time.monotonic()`` value): then it returns False at once, so that a caller never sleeps past its own
    budget.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, deadline: float | None = None) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            wait = max(0.0, (1 - self._tokens) / self._rate)
            if deadline is not None and now + wait > deadline:
                return False
            # Take the token now (the balance may go negative): later callers queue behind this one.
            self._tokens -= 1
        if wait:
            self._sleep(wait)
        return True

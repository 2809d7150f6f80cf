"""Pacing calls to AWS quotas that are shared with other callers (the console, CI/CD, other tools).

Every control-plane call goes through the token buckets of its account, region and quota, at a configured
share of the quota AWS documents, so the auditor leaves the rest to people. A call whose token would come
after the caller's deadline is not made: ``QuotaWait`` is raised at once instead, so that a target the
quota cannot fit into this run is deferred, never reported as throttled.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from access_auditor.errors import AuditorError


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
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, deadline: float | None = None) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = max(0.0, (1 - self._tokens) / self.rate)
            if deadline is not None and now + wait > deadline:
                return False
            # Take the token now (the balance may go negative): later callers queue behind this one.
            self._tokens -= 1
        if wait:
            self._sleep(wait)
        return True


@dataclass(frozen=True)
class Quota:
    """A quota as AWS documents it: ``rate`` calls a second, ``burst`` at once, per account and region."""

    name: str
    rate: float
    burst: float
    operations: frozenset[str] | None = None  # None: every operation of the service


# API Gateway quotas ("Amazon API Gateway quotas", control plane): about 10 requests a second per account
# across all operations, burst 40; GetResources alone 5 every 2 seconds.
APIGATEWAY_CALLS = Quota("apigateway", 10.0, 40.0)
GET_RESOURCES = Quota("apigateway:GetResources", 2.5, 5.0, frozenset({"GetResources"}))
# CloudTrail: LookupEvents 2 calls a second per account and region.
LOOKUP_EVENTS = Quota("cloudtrail:LookupEvents", 2.0, 2.0, frozenset({"LookupEvents"}))
# Security Hub: BatchImportFindings 10 requests a second, burst 30, per account and region ("Quotas for
# Security Hub": rate quotas of BatchImportFindings).
IMPORT_FINDINGS = Quota("securityhub:BatchImportFindings", 10.0, 30.0, frozenset({"BatchImportFindings"}))
QUOTAS = {"apigateway": (APIGATEWAY_CALLS, GET_RESOURCES), "cloudtrail": (LOOKUP_EVENTS,),
          "securityhub": (IMPORT_FINDINGS,)}  # fmt: skip

# The deadline of whatever the current thread is auditing; set by the audit, read before each call.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


class QuotaWait(AuditorError):
    """The quota share has no token for this call before the caller's deadline: the call was not made."""

    def __init__(self, operation: str, quota: str) -> None:
        super().__init__(f"{operation}: the {quota} quota share has no room before the deadline")
        self.operation = operation
        self.quota = quota


class Pacer:
    """The buckets of one service in one account and region, at ``share`` of AWS's quotas."""

    def __init__(self, quotas: tuple[Quota, ...], share: float) -> None:
        self.buckets = [
            (quota, TokenBucket(quota.rate * share, max(1.0, math.floor(quota.burst * share))))
            for quota in quotas
        ]

    def __call__(self, operation: str) -> None:
        deadline = DEADLINE.get()
        for quota, bucket in self.buckets:
            if quota.operations is not None and operation not in quota.operations:
                continue
            if not bucket.acquire(deadline):
                raise QuotaWait(operation, quota.name)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Calls made in this block, in this thread, must get their quota token before ``at``."""
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)

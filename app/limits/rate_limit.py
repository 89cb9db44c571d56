"""Per-principal rate limiting: one token bucket per authenticated principal.

A bucket holds up to `burst` tokens and refills at `requests_per_minute / 60` tokens a second;
each authenticated request takes one token, and a request that finds none is answered 429
problem+json with `Retry-After` (whole seconds until a token is back). Limiting the principal,
not the client address, is what matters here: CI runners share NAT addresses, and one runaway
pipeline must not starve the others.

The buckets live in the process: with several replicas each enforces the limit on its own, so
the cluster-wide allowance is up to replicas x the configured rate (documented in the README).
Unauthenticated requests never reach a bucket; they fail authentication first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from app.auth import PrincipalDep
from app.errors import ScangateError
from app.services import ServicesDep
from app.settings import Settings

# Buckets kept at most; past it, full buckets (idle principals) are forgotten, which is
# lossless: a forgotten principal gets a full bucket back, which is what it had.
MAX_TRACKED_PRINCIPALS: Final = 10_000


class RateLimited(ScangateError):
    status = 429
    title = "Too Many Requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        *,
        requests_per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute < 1 or burst < 1:
            raise ValueError("requests_per_minute and burst must be at least 1")
        self.rate = requests_per_minute / 60.0  # tokens per second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, principal: str) -> None:
        """Take one token for `principal`, or raise RateLimited. No await inside: on one event
        loop the check and the take cannot interleave with another request's."""
        now = self._clock()
        bucket = self._buckets.get(principal)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_PRINCIPALS:
                self._forget_full(now)
            bucket = self._buckets[principal] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = math.ceil((1.0 - bucket.tokens) / self.rate)
        raise RateLimited(
            f"rate limit exceeded: at most {self.burst} requests at once and "
            f"{round(self.rate * 60)} per minute for each principal; retry in {wait} s",
            retry_after=max(1, wait),
        )

    def tracked(self) -> int:
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        refill_seconds = self.burst / self.rate
        idle = [p for p, b in self._buckets.items() if now - b.updated >= refill_seconds]
        for principal in idle:
            del self._buckets[principal]


def rate_limiter_for(settings: Settings) -> RateLimiter | None:
    """The app's limiter, None when `rate_limit` is not configured."""
    limit = settings.rate_limit
    if limit is None:
        return None
    return RateLimiter(requests_per_minute=limit.requests_per_minute, burst=limit.burst)


async def enforce_rate_limit(principal: PrincipalDep, services: ServicesDep) -> None:
    """A router dependency (`app.main`): take a token for the authenticated principal. After
    authentication, because the principal is what is limited, and an unauthenticated flood
    must not drain a real principal's bucket."""
    if services.rate_limiter is not None:
        services.rate_limiter.acquire(principal.id)

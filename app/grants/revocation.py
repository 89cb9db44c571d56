"""When a revocation may be attempted: the claimant's lease and the retry backoff.

Ending a grant claims it first (`active -> revoking`, a conditional UPDATE committed on its
own); the claim carries a lease (`next_attempt_at`): other replicas leave the grant alone until
it passes, and if the claimant dies, the reaper retries once it has. A failed attempt sets the
next one `retry_delay` later (`GrantLifecycle`).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final

# How long a claimant owns a revocation attempt. Short, so a replica that dies mid-revocation
# delays the retry little; an attempt that outlives it is harmless (deletes treat 404 as done
# and only one claimant can finish the grant).
REVOCATION_LEASE: Final = timedelta(seconds=30)
REAPER_ACTOR: Final = "scangate:reaper"


def lease_until(now: datetime) -> datetime:
    return now + REVOCATION_LEASE


def backoff_seconds(attempt: int, cap_seconds: float) -> float:
    """Exponential backoff after the n-th failure: 1 s, 2 s, 4 s ... at most `cap_seconds`. The
    one formula of the grants package (a revocation's retry, the reaper after a failed pass):
    both schedule a later moment rather than retry a call in place, so a retry library's
    decorators would not fit."""
    return min(float(cap_seconds), 2.0 ** max(0, attempt - 1))


def retry_delay(attempts: int, max_seconds: int) -> timedelta:
    """When a failed revocation is next attempted: the backoff, jittered so replicas that failed
    together do not retry together."""
    return timedelta(seconds=backoff_seconds(attempts, max_seconds) * random.uniform(0.75, 1.0))

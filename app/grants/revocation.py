"""When a revocation may be attempted: the claimant's lease and the retry backoff.

Ending a grant claims it first (`active -> revoking`, a conditional UPDATE committed on its
own); the claim carries a lease (`next_attempt_at`): other replicas leave the grant alone until
it passes, and if the claimant dies, the reaper retries once it has. A failed attempt sets the
next one `retry_delay` later (`GrantLifecycle`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from app.backoff import backoff_seconds as backoff_seconds  # the reaper's, after a failed pass
from app.backoff import jittered_backoff_seconds

# How long a claimant owns a revocation attempt. Short, so a replica that dies mid-revocation
# delays the retry little; an attempt that outlives it is harmless (deletes treat 404 as done
# and only one claimant can finish the grant).
REVOCATION_LEASE: Final = timedelta(seconds=30)
REAPER_ACTOR: Final = "scangate:reaper"


def lease_until(now: datetime) -> datetime:
    return now + REVOCATION_LEASE


def retry_delay(attempts: int, max_seconds: int) -> timedelta:
    """When a failed revocation is next attempted: the backoff, jittered so replicas that failed
    together do not retry together."""
    return timedelta(seconds=jittered_backoff_seconds(attempts, max_seconds))

"""The one exponential backoff formula: after the n-th failure, wait 1 s, 2 s, 4 s ... at most a
cap, jittered where several parties that failed together must not retry together.

Used by a grant's revocation retries and the reaper after a failed pass (app/grants), and by
notification deliveries (app/notifications). Each schedules a later moment rather than retry a
call in place, so a retry library's decorators would not fit.
"""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, cap_seconds: float) -> float:
    """Exponential backoff after the n-th failure: 1 s, 2 s, 4 s ... at most `cap_seconds`."""
    return min(float(cap_seconds), 2.0 ** max(0, attempt - 1))


def jittered_backoff_seconds(attempt: int, cap_seconds: float) -> float:
    """`backoff_seconds`, shortened by up to a quarter at random."""
    return backoff_seconds(attempt, cap_seconds) * random.uniform(0.75, 1.0)

"""The service's notion of "now" (`format_rfc3339`, how times are written, is `app.rfc3339`'s).

Times are kept at millisecond precision so that what the API shows (RFC 3339 with
milliseconds) is exactly what the database holds and what the reaper compares.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.rfc3339 import format_rfc3339

__all__ = ["format_rfc3339", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

"""The service's notion of "now" and how times are written in the API.

Times are kept at millisecond precision so that what the API shows (RFC 3339 with
milliseconds) is exactly what the database holds and what the reaper compares.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_rfc3339(value: datetime) -> str:
    """`2025-01-31T12:00:00.123Z`: RFC 3339, UTC, always with milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

"""How scangate writes a moment: RFC 3339 in UTC with milliseconds, `2025-01-31T12:00:00.123Z`.

One format for the API's JSON, the audit trail and the log lines, so a moment reads (and sorts)
the same wherever it appears.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_rfc3339(value: datetime) -> str:
    """`value` (timezone-aware) as RFC 3339, UTC, always with milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

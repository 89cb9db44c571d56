"""Which database failures mean "the database is unavailable, retry later" rather than a bug.

The API answers the first kind with 503 and `Retry-After` (like an unreachable cluster) and
keeps 500 for the second: a failed constraint or a syntax error is scangate's fault and must
look like one. Unavailable means the server cannot be reached or lost the connection
(restarts, failovers, network), refuses new work (shutting down, too many connections), or,
on SQLite, the file is locked or cannot be written.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATE classes of an unavailable server: 08 connection exception, 53 insufficient
# resources (too many connections, disk full), 57 operator intervention (admin shutdown, crash
# shutdown, cannot connect now), 58 system error (I/O).
_UNAVAILABLE_SQLSTATE_CLASSES: Final = ("08", "53", "57", "58")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot serve right now."""
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # no pooled connection became free in time, or a ping found it dead
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    # No SQLSTATE: the driver failed on the client side (connection refused or lost), or
    # SQLite reported an operational condition (locked, busy, I/O).
    return True

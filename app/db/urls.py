"""Database URLs as configured (`sqlite:///x.db`, `postgresql+psycopg://...`) and the driver
URLs derived from them.

Operators write the plain URL; the service runs async (aiosqlite / psycopg's async mode) while
Alembic migrations run sync. Both are derived here so no other module parses URLs.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Accepted spellings -> the dialect+driver used for the service (async) and for Alembic (sync).
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
# psycopg 3 has one SQLAlchemy dialect for both modes; create_async_engine picks async.
_SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgresql+psycopg": "postgresql+psycopg",
}


class UnsupportedDatabaseURL(ValueError):
    """The URL names an engine or driver scangate does not support. The message quotes only
    the scheme, never the URL (it may carry a password)."""


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedDatabaseURL(
            "not a database URL; use sqlite:///path.db or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.drivername not in _ASYNC_DRIVERS:
        raise UnsupportedDatabaseURL(
            f"unsupported scheme {parsed.drivername!r}; use sqlite:///path.db or "
            "postgresql+psycopg://user@host/db"
        )
    return parsed


def async_database_url(url: str) -> URL:
    """The URL for the service's async engine."""
    parsed = _parse(url)
    return parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])


def sync_database_url(url: str) -> URL:
    """The URL for Alembic (sync drivers: pysqlite, psycopg)."""
    return async_database_url(url).set(
        drivername=_SYNC_DRIVERS[_ASYNC_DRIVERS[_parse(url).drivername]]
    )


def is_sqlite(url: str | URL) -> bool:
    parsed = url if isinstance(url, URL) else _parse(url)
    return parsed.get_backend_name() == "sqlite"


def redacted_url(url: str) -> str:
    """The URL with its password masked: the only form that may be logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"

"""The database: one async engine per `Database` (created by the app factory, the reaper or the
CLI, never at import time) and the Alembic helpers that migrate it the way production does.

Migrations live in `migrations/` at the repository root, next to the `app` package. They are
found, in order, at `$SCANGATE_MIGRATIONS_DIR`, then `<dir containing app/>/migrations` (a source
checkout, an editable install, or a container image that copies the tree, as the Dockerfile
does). A plain wheel install does not carry them; point `SCANGATE_MIGRATIONS_DIR` at a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, StaticPool

from app.db.urls import async_database_url, is_sqlite, sync_database_url
from app.db.wal_checkpoint import SAFETY_NET_PAGES

MIGRATIONS_ENV_VAR: Final = "SCANGATE_MIGRATIONS_DIR"
# SQLite waits this long for a competing writer (the reaper, another request) instead of
# failing at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
# A pooled PostgreSQL connection idle for longer than this is pinged before use.
_PING_AFTER_IDLE_SECONDS: Final = 2.0
# Arbitrary but fixed: every replica takes the same PostgreSQL advisory lock around migrations,
# so two pods starting together do not both try to create the tables. Alembic itself keeps
# process-global state, so one process must never migrate from two threads at once.
_MIGRATION_LOCK_KEY: Final = 0x5CA9_6A7E


# The database and task whose unit of work is open in this context (see `Database.session`).
# Child tasks inherit the value but are other tasks, so they may open their own.
_open_unit: contextvars.ContextVar[tuple[Database, asyncio.Task[Any] | None] | None] = (
    contextvars.ContextVar("scangate_open_unit", default=None)
)


class Database:
    """An async engine and its session factory for one database URL."""

    def __init__(self, url: str, *, pool_size: int = 32, max_overflow: int = 8) -> None:
        self.url: URL = async_database_url(url)
        self.is_sqlite = is_sqlite(self.url)
        # A file-backed SQLite database's path (its WAL is checkpointed in the background by
        # the serving app: app/db/wal_checkpoint.py); None for PostgreSQL and in-memory SQLite.
        self.sqlite_file: Path | None = None
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if self.url.database in (None, "", ":memory:"):
                # An in-memory database exists per connection: share exactly one.
                kwargs["poolclass"] = StaticPool
            else:
                self.sqlite_file = Path(self.url.database)
                create_private_file(self.sqlite_file)
                # SQLite has one writer at a time. With several connections, writers that
                # collide wait in SQLite's busy handler, which sleeps in steps of up to 100 ms
                # (p99 latency of seconds under load), and a transaction that read before
                # writing can fail outright; with one, they queue for it in the pool, in
                # order, and never sleep. Transactions are short (none is ever open across a
                # cluster call), so readers lose little by queueing too. The price: a task
                # must not open a second unit while it holds one (it would wait for itself),
                # which `session()` refuses at once instead of hanging.
                kwargs.update(pool_size=1, max_overflow=0)
        else:
            # Sized for the API's concurrency (tens of requests at once, each holding a
            # connection only for its short transactions): a pool that is too small makes
            # PostgreSQL fork a backend for an overflow connection on every busy moment and
            # close it right after. 40 at most per replica (44 with the grant writer's, below),
            # so a couple of replicas fit PostgreSQL's default max_connections (100).
            kwargs.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                # The most recently used connection first: under light load the same few stay
                # busy, with warm server-side caches and prepared statements, instead of a
                # round robin over the whole pool.
                pool_use_lifo=True,
                # Pinged on checkout only after sitting idle (see _ping_if_idle).
                pool_pre_ping=False,
                pool_recycle=1800,
                connect_args={"connect_timeout": 10},
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # PostgreSQL: single statements that are atomic on their own (the grant writer's, see
        # app/grants/batch_writes.py) run without BEGIN and COMMIT round trips, on connections
        # of their own that stay in autocommit mode (switching a pooled connection's mode and
        # back costs more than the statement's own work). None on SQLite.
        self.autocommit_engine: AsyncEngine | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _configure_sqlite_connection)
        else:
            self.autocommit_engine = create_async_engine(
                self.url, **{**kwargs, "pool_size": 2, "max_overflow": 2},
                isolation_level="AUTOCOMMIT",
            )  # fmt: skip
            for engine in (self.engine, self.autocommit_engine):
                event.listen(engine.sync_engine, "checkin", _note_idle_since)
                event.listen(engine.sync_engine, "checkout", _ping_if_idle)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self.autocommit_sessionmaker: async_sessionmaker[AsyncSession] | None = (
            async_sessionmaker(self.autocommit_engine, expire_on_commit=False)
            if self.autocommit_engine is not None
            else None
        )

    def session(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A unit of work: commits when the block succeeds, rolls back when it raises. The one
        way scangate opens a transaction (docs/ARCHITECTURE.md, "The transaction rule"): a
        task holds at most one at a time, so opening a second inside the first is a bug and
        raises here (on file SQLite's one-connection pool it would wait for itself forever)."""
        return self._unit(self.sessionmaker)

    def autocommit_session(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """`session` on the PostgreSQL autocommit engine: each statement commits by itself,
        with no BEGIN and COMMIT round trips; for units whose statements are each atomic on
        their own (the grant guard's batches). None on SQLite: raises there."""
        if self.autocommit_sessionmaker is None:
            raise RuntimeError("only PostgreSQL has an autocommit engine")
        return self._unit(self.autocommit_sessionmaker)

    @contextlib.asynccontextmanager
    async def _unit(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        owner = (self, asyncio.current_task())
        if _open_unit.get() == owner:
            raise RuntimeError("a unit of work is already open in this task (no nesting)")
        token = _open_unit.set(owner)
        try:
            async with sessionmaker() as session:
                try:
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
        finally:
            _open_unit.reset(token)

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.autocommit_engine is not None:
            await self.autocommit_engine.dispose()


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Check a pooled connection before use if it sat idle for a while.

    Connections die with PostgreSQL restarts and the idle timeouts of proxies, and a dead one
    must not fail a request. A connection put back moments ago is alive as far as anyone can
    tell, though, and pinging it anyway (what `pool_pre_ping` does) costs a round trip on every
    transaction, two of them on each grant's critical path. Under load, connections are
    reused within milliseconds; after an outage or a quiet spell, they are pinged.
    """
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since < _PING_AFTER_IDLE_SECONDS:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except Exception as exc:
        # The pool discards this connection and checks out (or opens) another.
        raise DisconnectionError("stale database connection") from exc
    finally:
        with contextlib.suppress(Exception):
            cursor.close()


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while one writer commits (requests vs. the reaper);
    # busy_timeout makes writers queue instead of failing; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Commits leave checkpoints to the background checkpointer (wal_checkpoint.py); this
        # higher threshold only bounds the log when none runs.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
    finally:
        cursor.close()


def create_private_file(path: Path) -> None:
    """Create the SQLite database file `0600` (owner only) unless it exists: it holds every
    grant's requester, reason and audit trail, and SQLite itself would create it with the
    process's umask (often world-readable). SQLite gives its journal and WAL files the
    database file's permissions, so they follow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def migrations_dir() -> Path:
    """Where the Alembic scripts are (see the module docstring)."""
    configured = os.environ.get(MIGRATIONS_ENV_VAR)
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[2] / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(
        f"Alembic migrations not found (looked in {', '.join(map(str, candidates))}); "
        f"set {MIGRATIONS_ENV_VAR} to the 'migrations' directory of the scangate source"
    )


def alembic_config(url: str) -> Any:
    """An Alembic Config for `url`, built in code rather than from alembic.ini so that env.py
    does not reconfigure the host process's logging (it only does so when an ini file is set)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # configparser interpolates '%': escape it (percent-encoded passwords contain it).
    rendered = sync_database_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Serialise migration runs of several processes (replicas starting together, or `scangate
    migrate` beside a starting server) on one database."""
    if is_sqlite(url):
        database = sync_database_url(url).database
        if not database or database == ":memory:":
            yield
            return
        path = Path(database)
        create_private_file(path)
        # SQLite cannot hold a lock across Alembic's own connection without blocking it, so a
        # lock file beside the database serialises the runs instead.
        with open(f"{path}.migrate.lock", "a", opener=_owner_only) as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    engine = create_engine(sync_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()


def run_migrations(url: str, revision: str = "head") -> None:
    """`alembic upgrade <revision>` against `url` (synchronous; call before serving)."""
    from alembic import command

    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """`alembic downgrade <revision>` against `url`."""
    from alembic import command

    with _migration_lock(url):
        command.downgrade(alembic_config(url), revision)

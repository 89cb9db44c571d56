"""The database layer on both engines: URLs, SQLite pragmas, the unit of work, the request
session as transaction owner, and migrations run the way production runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from app.db.engine import Database, downgrade, run_migrations
from app.db.urls import (
    UnsupportedDatabaseURL,
    async_database_url,
    redacted_url,
    sync_database_url,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body VARCHAR(50) PRIMARY KEY)"))
    yield db
    await db.dispose()


async def notes(db: Database) -> list[str]:
    async with db.engine.connect() as connection:
        result = await connection.execute(text("SELECT body FROM notes ORDER BY body"))
        return [row[0] for row in result]


@pytest.mark.parametrize(
    ("configured", "service", "alembic"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db", "sqlite+pysqlite:///x.db"),
        (
            "postgresql+psycopg://u@db:5432/scangate",
            "postgresql+psycopg://u@db:5432/scangate",
            "postgresql+psycopg://u@db:5432/scangate",
        ),
        ("postgresql://u@db/scangate", "postgresql+psycopg://u@db/scangate", None),
    ],
)
async def test_urls_map_to_async_service_and_sync_alembic_drivers(
    configured: str, service: str, alembic: str | None
) -> None:
    assert async_database_url(configured).render_as_string() == service
    if alembic is not None:
        assert sync_database_url(configured).render_as_string() == alembic


async def test_unsupported_urls_are_rejected_without_quoting_them() -> None:
    with pytest.raises(UnsupportedDatabaseURL) as caught:
        async_database_url("mysql+pymysql://u:hunter2@db/x")

    assert "hunter2" not in str(caught.value)
    assert redacted_url("postgresql+psycopg://u:hunter2@db/x") == "postgresql+psycopg://u:***@db/x"


async def test_sqlite_connections_use_wal_and_wait_for_writers(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
    finally:
        await db.dispose()

    assert journal == "wal"
    assert busy == 10_000
    assert foreign_keys == 1


async def test_ping_answers_on_a_reachable_database(database: Database) -> None:
    await database.ping()


async def test_ping_raises_when_the_database_is_unreachable() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(OperationalError):
            await db.ping()
    finally:
        await db.dispose()


async def test_unit_of_work_commits_on_success_and_rolls_back_on_error(
    database: Database,
) -> None:
    async with database.session() as session:
        await session.execute(text("INSERT INTO notes VALUES ('kept')"))

    async def failing_unit_of_work() -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO notes VALUES ('dropped')"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failing_unit_of_work()

    assert await notes(database) == ["kept"]


async def test_a_unit_of_work_inside_another_in_one_task_is_refused_not_a_hang(
    database: Database,
) -> None:
    # On file SQLite the pool has one connection: a nested unit would wait for itself forever.
    async def nested_unit() -> None:
        async with asyncio.timeout(5), database.session():
            pass

    async with database.session() as session:
        await session.execute(text("INSERT INTO notes VALUES ('outer')"))
        with pytest.raises(RuntimeError, match="already open in this task"):
            await nested_unit()
    assert await notes(database) == ["outer"]


async def test_units_of_work_in_concurrent_tasks_queue_for_the_database(
    database: Database,
) -> None:
    async def add(body: str) -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO notes VALUES (:b)"), {"b": body})

    async with asyncio.timeout(10):
        await asyncio.gather(*(add(f"note-{i}") for i in range(8)))
    assert await notes(database) == sorted(f"note-{i}" for i in range(8))


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_database_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(sync_database_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_replicas_migrating_at_once_both_succeed(database_url: str, tmp_path: Path) -> None:
    # Two processes, as two replicas starting together would be (`scangate migrate` is what
    # `scangate serve` runs first). Alembic is process-global, so threads would not do.
    env = {**os.environ, "SCANGATE_DATABASE_URL": database_url}
    env.pop("SCANGATE_CONFIG", None)
    command = [sys.executable, "-m", "app.cli", "migrate"]
    runs = [
        subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read() if run.stderr else b"") for run in runs]

    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert _revision(database_url) is not None
    assert "grants" in _tables(database_url)


def test_downgrade_to_base_then_upgrade_again(database_url: str) -> None:
    run_migrations(database_url)
    head = _revision(database_url)

    downgrade(database_url, "base")
    assert _tables(database_url) <= {"alembic_version"}

    run_migrations(database_url)
    assert _revision(database_url) == head


async def test_postgres_connection_that_died_while_idle_is_replaced_not_failed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pooled connections are pinged before use only once idle for a while (busy ones are not:
    # a round trip per transaction); one killed meanwhile (a restart, a proxy's idle timeout)
    # must be swapped for a fresh one, not fail the request.
    import asyncio

    import psycopg

    from app.db import engine as engine_module

    monkeypatch.setattr(engine_module, "_PING_AFTER_IDLE_SECONDS", 0.05)
    db = Database(postgres_url)
    try:
        async with db.session() as session:
            backend = await session.scalar(text("SELECT pg_backend_pid()"))
        libpq_url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        await asyncio.sleep(0.2)
        async with db.session() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) != backend
    finally:
        await db.dispose()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_sqlite_database_files_are_created_owner_only(tmp_path: Path) -> None:
    # What a first start does: migrate, then open the database and write (the WAL appears).
    path = tmp_path / "data" / "scangate.db"
    url = f"sqlite:///{path}"
    previous = os.umask(0o022)  # the usual umask, under which SQLite would create 0644
    try:
        await asyncio.to_thread(run_migrations, url)
        db = Database(url)
        try:
            async with db.session() as session:
                await session.execute(text("CREATE TABLE notes (body VARCHAR(50))"))
                await session.execute(text("INSERT INTO notes VALUES ('x')"))
            files = sorted(p.name for p in path.parent.iterdir())
            assert "scangate.db-wal" in files, files
            for name in files:
                assert _mode(path.parent / name) == 0o600, (name, oct(_mode(path.parent / name)))
        finally:
            await db.dispose()
    finally:
        os.umask(previous)


async def test_an_existing_sqlite_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "scangate.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    db = Database(f"sqlite:///{path}")
    await db.dispose()
    assert _mode(path) == 0o640

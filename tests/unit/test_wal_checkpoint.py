"""SQLite's WAL checkpoints run in the background, not inside the requests' commits
(app/db/wal_checkpoint.py), on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db.engine import Database
from app.db.wal_checkpoint import SAFETY_NET_PAGES, WalCheckpointer

pytestmark = pytest.mark.anyio

# SQLite's own default: a commit that takes the log past this many pages checkpoints.
SQLITE_DEFAULT_AUTOCHECKPOINT = 1000
PAGE = 4096


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def write_pages(db: Database, pages: int) -> None:
    """Commit about `pages` pages of rows, a transaction per ~20 pages (as requests do)."""
    row = "x" * 2000
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS blobs (body TEXT)"))
    for _ in range(pages // 20):
        async with db.engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO blobs (body) VALUES (:body)"), [{"body": row}] * 40
            )


async def test_commits_leave_the_checkpoint_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "scangate.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.engine.connect() as connection:
            threshold = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert threshold == SAFETY_NET_PAGES
        assert db.sqlite_file == path

        await write_pages(db, 2 * SQLITE_DEFAULT_AUTOCHECKPOINT)
        wal = path.with_name(path.name + "-wal")
        # No commit checkpointed: the log holds everything written (a checkpoint would have
        # let the next commit start the log over, at about 1,000 pages), and the database
        # file itself has not grown.
        assert wal.stat().st_size > 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT * PAGE
        assert path.stat().st_size < 100 * PAGE

        checkpointer = WalCheckpointer(path)
        try:
            busy, frames, copied = await checkpointer.checkpoint()
        finally:
            await checkpointer.stop()
        assert busy == 0
        assert frames > 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT
        assert copied == frames
        assert path.stat().st_size > 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT * PAGE
        async with db.engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM blobs"))).scalar()
        assert count == (2 * SQLITE_DEFAULT_AUTOCHECKPOINT // 20) * 40
    finally:
        await db.dispose()


async def test_the_running_checkpointer_copies_the_log_back_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "scangate.db"
    db = Database(f"sqlite:///{path}")
    checkpointer = WalCheckpointer(path, interval=0.05)
    try:
        checkpointer.start()
        await write_pages(db, 400)
        # Within a few intervals the data is in the database file, though no commit
        # checkpointed (400 pages is far below the safety net).
        for _ in range(100):
            if path.stat().st_size > 300 * PAGE:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > 300 * PAGE
    finally:
        await checkpointer.stop()
        await db.dispose()


async def test_postgresql_and_in_memory_databases_have_no_file_to_checkpoint() -> None:
    memory = Database("sqlite://")
    postgres = Database("postgresql://scangate@localhost/scangate")
    try:
        assert memory.sqlite_file is None
        assert postgres.sqlite_file is None
    finally:
        await memory.dispose()
        await postgres.dispose()

"""SQLite's WAL checkpoints, moved off the commit path.

In WAL mode a commit appends pages to the write-ahead log; a checkpoint copies them back into
the database file and syncs both. By default SQLite checkpoints inside whichever commit pushes
the log past 1,000 pages, so about one commit in a hundred (a few each second under load) takes
milliseconds instead of a tenth of one: the time to copy and fsync. That commit belongs to a
request (a grant, a batch of the grant guard's decisions), whose callers all wait for it.

Here a background thread checkpoints once a second instead (`PRAGMA wal_checkpoint(PASSIVE)`,
which never waits for readers or writers, and syncs off the event loop), so commits find the
log already copied back and only append. The automatic checkpoint stays on as a safety net at
a higher threshold (`SAFETY_NET_PAGES`): a process that runs no checkpointer (the CLI, a
guard-only test app) or a checkpointer that fell behind still keeps the log bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

# Pages (4 KiB each by default) after which a commit checkpoints by itself: 16 times SQLite's
# default, reached only when no checkpointer keeps up.
SAFETY_NET_PAGES: Final = 16_000
INTERVAL_SECONDS: Final = 1.0


class WalCheckpointer:
    """Checkpoints one SQLite database's write-ahead log every `interval` seconds, from a
    thread, on a connection of its own."""

    def __init__(self, path: Path, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._connection: sqlite3.Connection | None = None
        # Held by the thread using the connection: a checkpoint still running when `stop` is
        # called (a thread cannot be cancelled) finishes before the connection is closed.
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="scangate-sqlite-checkpoints"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._close)

    async def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint, in a thread: (busy, frames in the log, frames copied back)."""
        return await asyncio.to_thread(self._checkpoint)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.checkpoint()
            except sqlite3.Error as exc:
                # The next commit past the safety net checkpoints by itself; try again later.
                log.warning("sqlite checkpoint of %s failed: %s", self._path, exc)

    def _checkpoint(self) -> tuple[int, int, int]:
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self._path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        busy, frames, copied = row
        return int(busy), int(frames), int(copied)

    def _close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

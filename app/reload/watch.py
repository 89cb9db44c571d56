"""Reloading when the configuration file changes, for platforms that change it under a running
process: Kubernetes updates a ConfigMap volume by writing a new directory and swapping the
`..data` symlink, so the mounted path's content changes atomically, without any signal.

The file's content is hashed every `interval` seconds (a few hundred bytes: cheaper and surer
than trusting modification times through symlinks and `kubectl cp`), and a reload starts when
the hash differs from the last one seen. A content that was refused is not retried until the
file changes again, so a broken file is logged once, not at every poll. A file written in two
steps may be seen half-written: that reload is refused and the next poll sees the whole file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def content_hash(path: Path) -> str | None:
    """The sha256 of the file's content; None while it cannot be read (absent, say)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigFileWatcher:
    """Calls `on_change()` whenever the content of `path` changes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_change: Callable[[], Awaitable[Any]],
        *,
        interval: float,
    ) -> None:
        self.path = Path(path)
        self._on_change = on_change
        self.interval = interval
        # Taken now, when the service has just loaded the file, not when the first poll runs.
        self._seen = content_hash(self.path)

    async def check(self) -> bool:
        """Reload if the content changed since the last check; True if it did."""
        current = await asyncio.to_thread(content_hash, self.path)
        if current == self._seen:
            return False
        self._seen = current
        log.info("configuration file %s changed: reloading", self.path)
        await self._on_change()
        return True

    async def watch(self) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                # The reloader reports its own failures; this keeps a bug from ending the watch.
                log.exception("watching %s for changes failed; still watching", self.path)

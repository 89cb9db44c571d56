"""Reloading when the configuration file changes, for platforms that change it under a running
process: Kubernetes updates a ConfigMap volume by writing a new directory and swapping the
`..data` symlink, so the mounted path's content changes atomically, without any signal.

The file's content is hashed every `interval` seconds (a few hundred bytes: cheaper and surer
than trusting modification times through symlinks and `kubectl cp`), and a reload starts when
the hash differs from the content the reloader last read. A content that was refused is not
retried until the file changes again, so a broken file is logged once, not at every poll; a
change already reloaded by SIGHUP is not reloaded again. A file written in two steps may be
seen half-written: that reload is refused and the next poll sees the whole file.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.reload.reloader import ConfigReloader, content_hash

log = logging.getLogger(__name__)

TRIGGER = "file changed"


class ConfigFileWatcher:
    """Reloads `reloader` whenever its file's content differs from what it last read."""

    def __init__(self, reloader: ConfigReloader, path: Path, *, interval: float) -> None:
        self._reloader = reloader
        self.path = path
        self.interval = interval

    async def check(self) -> bool:
        """Reload if the content changed since the reloader last read it; True if it did."""
        current = await asyncio.to_thread(content_hash, self.path)
        if current == self._reloader.file_hash:
            return False
        log.info("configuration file %s changed: reloading", self.path)
        await self._reloader.reload(TRIGGER)
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

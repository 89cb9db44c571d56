"""Server certificates read from files and reloaded when the files change.

Kubernetes updates a mounted Secret in place (cert-manager renewing a certificate, `helm
upgrade` rotating the chart's own): the files change under a running process. One
`ssl.SSLContext` is built per listener and handed to uvicorn; loading the new pair into that
same context makes new TLS handshakes use it while open connections finish on the old one, so
a rotation needs no restart and drops no request.

A pair that fails to load (the key written before the certificate, say) is ignored and retried
at the next poll: serving the previous certificate a little longer beats refusing every
handshake.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from typing import Final

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 10.0


class ReloadingCertificate:
    """An SSLContext serving `cert_file`/`key_file`, reloaded by `reload_if_changed`."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._file_stamp()
        # The first load must succeed: a listener without a certificate cannot serve.
        self.context.load_cert_chain(cert_file, key_file)

    def _file_stamp(self) -> tuple[tuple[int, int], ...]:
        # stat() follows the `..data` symlinks of a Secret volume, so an atomic swap of the
        # directory shows up as a new modification time.
        stamps = []
        for path in (self.cert_file, self.key_file):
            info = os.stat(path)
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True if it did."""
        try:
            stamp = self._file_stamp()
        except OSError as exc:
            log.warning("TLS files %s unreadable, keeping the loaded pair: %s", self.cert_file, exc)
            return False
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning(
                "TLS files %s do not load yet, keeping the old pair: %s", self.cert_file, exc
            )
            return False
        self._stamp = stamp
        log.info("reloaded the TLS certificate %s", self.cert_file)
        return True

    async def watch(self, interval: float = POLL_SECONDS) -> None:
        """Poll for changes until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()

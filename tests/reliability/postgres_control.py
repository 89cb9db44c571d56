"""A PostgreSQL server of one test's own, which the test may stop and start again.

The session's shared server (tests/conftest.py) must never go down under other tests; the
database-outage scenario needs one it can take away. Same recipe as the shared one (a private
cluster in a temporary directory on a free loopback port, run as the `postgres` user when the
tests run as root, and a watchdog that stops it if the test process dies), plus `stop()` and
`start()` on the same port and data directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_BIN_DIRECTORIES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                    "/usr/lib/postgresql/17/bin")  # fmt: skip


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in _BIN_DIRECTORIES:
        if (Path(directory) / name).exists():
            return str(Path(directory) / name)
    raise RuntimeError(f"PostgreSQL's {name} is not installed")


class StoppablePostgres:
    def __init__(self) -> None:
        self._as_root = os.geteuid() == 0
        self._prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        self._pg_ctl = _pg_bin("pg_ctl")
        self.base = Path(tempfile.mkdtemp(prefix="scangate-pg-outage-"))
        self.data, self.sockets = self.base / "data", self.base / "sock"
        self.sockets.mkdir()
        if self._as_root:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            [*self._prefix, _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self._watchdog: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [*self._prefix, self._pg_ctl, "-D", str(self.data), "-o", options,
             "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        if self._watchdog is None:
            stop = shlex.join(self._stop_command("immediate"))
            self._watchdog = subprocess.Popen(
                ["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                 f"{stop}; rm -rf {shlex.quote(str(self.base))}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def stop(self, how: str = "fast") -> None:
        """`fast` ends every session (a clean shutdown or failover); `immediate` is a crash."""
        subprocess.run(self._stop_command(how), check=True, capture_output=True)

    def destroy(self) -> None:
        subprocess.run(self._stop_command("immediate"), check=False, capture_output=True)
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def _stop_command(self, how: str) -> list[str]:
        return [*self._prefix, self._pg_ctl, "-D", str(self.data), "-m", how, "-w", "stop"]

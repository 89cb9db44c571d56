"""What `scangate serve --demo` checks before it touches its state directory.

A demo owns its directory (`.scangate-demo/`: API key, configuration, database) for as long as
it runs, and says so with an exclusive lock on `demo.lock` holding its URL. A second demo first
binds its port, then takes the lock; if either fails it stops without changing anything, so the
running demo keeps its key and its database and the commands it printed keep working.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOCK_FILE = "demo.lock"


class DemoRefused(Exception):
    """The demo cannot start; the message says why and what to do instead."""


def _running_demo(directory: Path) -> str | None:
    """The URL recorded by a demo that holds `directory`'s lock, if one does."""
    path = directory / LOCK_FILE
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "(address unknown)"
        return None


def _already_running(directory: Path, running: str) -> DemoRefused:
    return DemoRefused(
        f"a demo is already running from {directory} ({running}); nothing was changed. "
        "Use it, or stop it (Ctrl-C in its terminal) before starting another."
    )


def bind_listener(host: str, port: int, directory: Path) -> socket.socket:
    """The demo's listening socket, bound now so that nothing can take the port in between
    (uvicorn serves on this very socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a port left in TIME_WAIT by a demo that just stopped is free to reuse;
    # one that something listens on is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        running = _running_demo(directory)
        if running is not None:
            raise _already_running(directory, running) from None
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise DemoRefused(
            f"listening on {host}:{port} {reason}; nothing was changed. "
            "Choose another port: `make demo PORT=8081` or `scangate serve --demo --port 8081`."
        ) from None
    sock.listen(2048)
    return sock


@contextlib.contextmanager
def exclusive_directory(directory: Path, url: str) -> Iterator[None]:
    """Hold `directory` for this demo until the block ends (the lock dies with the process)."""
    directory.mkdir(parents=True, exist_ok=True)
    # Opened without truncating: a running demo's recorded URL must survive a refused attempt.
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    handle: IO[str] = os.fdopen(fd, "r+")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = handle.read().strip() or "(address unknown)"
            raise _already_running(directory, running) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}, {url}\n")
        handle.flush()
        yield

"""Fixtures of the notifications suite: a real HTTP receiver (a thread on loopback) and a
deployment of the service configured to notify it, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.notifications.receiver import SECRET, Receiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A listening receiver that checks signatures with `SECRET`."""
    server = Receiver(secret=SECRET.encode())
    server.start()
    yield server
    server.hanging.clear()
    server.stop()


@pytest.fixture
def target() -> Any:
    """`target(receiver, **overrides)`: one `notifications:` entry pointing at `receiver`,
    retrying quickly."""

    def build(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": "audit-sink",
            "url": receiver.url,
            "secret": SECRET,
            "timeout_seconds": 5,
            "retry_max_seconds": 1,
        }
        entry.update(overrides)
        return entry

    return build

"""Waiting for a condition that another task, thread or process makes true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> bool:
    """Poll `condition` until it holds or `within` seconds pass; its last value. The event loop
    keeps running in between (the app under test works on it)."""
    deadline = time.monotonic() + within
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


def wait_for(condition: Callable[[], object], *, within: float = 15.0) -> bool:
    """`eventually` for synchronous tests: blocks the thread while it polls."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())

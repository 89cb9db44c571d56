"""Fixtures of the demo suite: demos started as a user starts them, always stopped afterwards."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo.demo_process import DemoProcess, StartDemo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def start_demo() -> Iterator[StartDemo]:
    """`start_demo(cwd, port)` runs `scangate serve --demo --port PORT` in `cwd`."""
    started: list[DemoProcess] = []

    def start(cwd: Path, port: int) -> DemoProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)]
        demo = DemoProcess.start(argv, cwd, env)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.stop()

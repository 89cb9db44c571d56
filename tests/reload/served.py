"""`scangate serve` as a subprocess started from a YAML file, for SIGHUP and file-change
reloads: its logs go to a file (a pipe nobody reads could fill and stall the server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--config", str(config), "serve", "--no-migrate",
             "--port", str(port)],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.wait_for(lambda: self._answers(), what="the server to answer")

    def _answers(self) -> bool:
        try:
            httpx.get(f"{self.base}/healthz", timeout=1)
        except httpx.TransportError:
            assert self.process.poll() is None, self.log_path.read_text()
            return False
        return True

    def wait_for(self, check: Callable[[], bool], *, what: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base}/healthz", timeout=5).json()
        return body

    def reloads(self, outcome: str) -> float:
        for line in httpx.get(f"{self.base}/metrics", timeout=5).text.splitlines():
            if line.startswith(f'scangate_config_reloads_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        raise AssertionError("no scangate_config_reloads_total metric")

    def hangup_and_wait(self, outcome: str) -> dict[str, Any]:
        """Send SIGHUP and wait until a reload with `outcome` has been counted; /healthz."""
        before = self.reloads(outcome)
        self.process.send_signal(signal.SIGHUP)
        self.wait_for(lambda: self.reloads(outcome) > before, what=f"a reload {outcome}")
        return self.health()

    def get(self, path: str, key: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {key}"})

    def post(self, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {key}"}, json=body
        )

    def stop(self) -> str:
        """SIGTERM, wait, and the whole log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self._log.close()
        return self.log_path.read_text()

"""What the reliability scenarios share: the invariant check, a real `scangate serve` process,
an in-process app whose client sees 500s instead of exceptions, and the tally of what callers
were answered.

The invariant (docs/ARCHITECTURE.md, "Grant states"): after the reaper runs, the cluster holds
scangate objects exactly for the grants that are `provisioning`, `active` or `revoking`. Read
strictly: every object belongs to a live grant, an `active` grant has exactly its three objects,
and a `provisioning` or `revoking` grant at most those (it is half-way, by definition).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db.urls import sync_database_url
from app.main import create_app
from kubesim.pytest_plugin import KubesimHandle
from tests.support.cluster_view import cluster_objects, expected_objects
from tests.support.scangate import Deployment, Scangate

REPO = Path(__file__).resolve().parents[2]
LIVE = frozenset({"provisioning", "active", "revoking"})
OBJECT_PREFIX = "scangate-"

# -- the invariant ------------------------------------------------------------------------------


def grant_rows(database_url: str) -> dict[str, tuple[str, str]]:
    """{grant id: (status, namespace)} straight from the database."""
    engine = create_engine(sync_database_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, status, namespace FROM grants")).all()
    finally:
        engine.dispose()
    return {row[0]: (row[1], row[2]) for row in rows}


@dataclass
class Audit:
    grants: dict[str, tuple[str, str]]
    objects: dict[str, set[tuple[str, str, str]]]

    @property
    def leaked(self) -> dict[str, set[tuple[str, str, str]]]:
        """Objects of grants that are not live (or that the database does not know)."""
        return {
            grant_id: objects
            for grant_id, objects in self.objects.items()
            if self.grants.get(grant_id, ("unknown", ""))[0] not in LIVE
        }

    @property
    def wrong(self) -> dict[str, str]:
        """Live grants whose objects are not what their status promises."""
        problems: dict[str, str] = {}
        for grant_id, (status, namespace) in self.grants.items():
            if status not in LIVE:
                continue
            have = self.objects.get(grant_id, set())
            want = expected_objects(grant_id, namespace)
            if status == "active" and have != want:
                problems[grant_id] = f"active with {sorted(have)}"
            elif not have <= want:
                problems[grant_id] = f"{status} with foreign objects {sorted(have - want)}"
        return problems

    @property
    def unsettled(self) -> list[str]:
        return sorted(g for g, (status, _) in self.grants.items() if status in LIVE - {"active"})

    @property
    def statuses(self) -> dict[str, int]:
        return dict(Counter(status for status, _ in self.grants.values()))

    @property
    def leaked_objects(self) -> int:
        return sum(len(objects) for objects in self.leaked.values())


def audit(sim: KubesimHandle, database_url: str) -> Audit:
    objects: dict[str, set[tuple[str, str, str]]] = {}
    for kind, namespace, name in cluster_objects(sim):
        grant_id = name.removeprefix(OBJECT_PREFIX)
        objects.setdefault(grant_id, set()).add((kind, namespace, name))
    return Audit(grants=grant_rows(database_url), objects=objects)


async def settle(sim: KubesimHandle, database_url: str, *, within: float) -> Audit:
    """Poll until no grant is half-way (or `within` seconds pass); the last audit."""
    deadline = time.monotonic() + within
    for _ in range(100_000):
        result = audit(sim, database_url)
        if not result.unsettled or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError("unreachable")


def assert_invariant(result: Audit, *, settled: bool = True) -> None:
    """The invariant; with `settled`, also that no grant is left half-way."""
    assert result.leaked == {}, f"objects of ended grants: {result.leaked}"
    assert result.wrong == {}, f"live grants with the wrong objects: {result.wrong}"
    if settled:
        assert result.unsettled == [], f"grants stuck half-way: {result.statuses}"


# -- what callers were answered -----------------------------------------------------------------

# The 5xx statuses the API documents: 502 (the cluster refused scangate or rejected a request)
# and 503 with Retry-After (the cluster or the database is unavailable).
DOCUMENTED_5XX = frozenset({502, 503})


@dataclass
class Outcomes:
    """Every answer a scenario's callers got, and the ones that break the API's promises."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    transport_errors: int = 0

    def check(self, response: httpx.Response, what: str, seconds: float | None = None) -> None:
        status = response.status_code
        self.statuses[status] += 1
        if seconds is not None:
            self.latencies.append(seconds)
        if status >= 500 and status not in DOCUMENTED_5XX:
            self.violations.append(f"{what}: HTTP {status} {response.text[:200]}")
        if status == 503 and not response.headers.get("retry-after", "").isdigit():
            self.violations.append(f"{what}: 503 without Retry-After")
        if status >= 400 and not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            self.violations.append(f"{what}: HTTP {status} is not problem+json")

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def count(self, predicate: Any) -> int:
        return sum(n for status, n in self.statuses.items() if predicate(status))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "http_500": self.statuses.get(500, 0),
        }


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(fraction * 1000) - 1]


# -- the service in this process ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def in_process(
    deployment: Deployment, *, start_reaper: bool = True
) -> AsyncIterator[Scangate]:
    """Like `Deployment.running`, but an unhandled exception reaches the client as the 500 a
    real server would send, so a scenario can count it instead of dying on it."""
    app = create_app(deployment.settings, start_reaper=start_reaper)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scangate.test", timeout=120
        ) as http:
            yield Scangate(app, http, deployment.api_keys)


# -- the service as its own process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


class ServeProcess:
    """`scangate serve` in a subprocess: started, killed with SIGKILL, restarted on one port."""

    def __init__(self, config: Path, log: Path, *, log_level: str = "info") -> None:
        self.config = config
        self.log = log
        self.log_level = log_level
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.starts = 0

    def start(self, *, timeout: float = 60.0) -> None:
        assert self.process is None, "already running"
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--config", str(self.config), "serve",
             "--no-migrate", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", self.log_level],
            cwd=REPO, stdout=self._log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"scangate serve exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("scangate serve did not become healthy")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a node dies or the OOM killer strikes."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self._closed()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._closed()

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def _closed(self) -> None:
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def reap_once(config: Path) -> subprocess.CompletedProcess[str]:
    """`scangate reap --once`, as an operator (or a CronJob) would run it."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--config", str(config), "reap", "--once"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

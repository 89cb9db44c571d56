"""scangate as production runs it, for one benchmark stage: its database (a fresh SQLite file or
a fresh PostgreSQL database, migrated with Alembic), `scangate serve` in its own process on a
real socket (uvicorn, the production logging configuration), and an HTTP client for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from app.auth import generate_api_key
from app.db.engine import run_migrations
from bench.cluster import GRANTS_NAMESPACE, TARGET_NAMESPACE, TARGET_POD, SimulatedCluster
from bench.http import HttpClient, HttpResponse
from devsupport.postgres_server import fresh_database

PRINCIPAL: Final = "bench"
TTL_SECONDS: Final = 3600
GRANT_BODY: Final = {
    "namespace": TARGET_NAMESPACE,
    "pods": [TARGET_POD],
    "scanner": "exec",
    "ttl_seconds": TTL_SECONDS,
}
_START_TIMEOUT: Final = 60.0


class BenchError(RuntimeError):
    """Something the benchmark needs did not work; the message says what."""


@contextlib.contextmanager
def database(kind: str, directory: Path, postgres_server: str | None) -> Iterator[str]:
    """A fresh, migrated database of `kind` for one stage."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'scangate.db'}"
        run_migrations(url)
        yield url
        return
    if postgres_server is None:
        raise BenchError("PostgreSQL requested but no server is running")
    with fresh_database(postgres_server) as url:
        run_migrations(url)
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # A benchmark killed midway must not leave a server behind.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ScangateServer:
    url: str
    api_key: str
    pid: int
    log_path: Path


@dataclass(frozen=True)
class GuardListener:
    """The grant guard's listener for `scangate serve` to run beside the API."""

    port: int
    cert_file: Path
    key_file: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def scangate_config(
    cluster: SimulatedCluster,
    database_url: str,
    key_hash: str,
    guard: GuardListener | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database_url": database_url,
        "clusters": [
            {
                "name": "default",
                "kubeconfig": str(cluster.admin_kubeconfig),
                "grants_namespace": GRANTS_NAMESPACE,
            }
        ],
        "api_keys": [{"name": PRINCIPAL, "sha256": key_hash}],
        # The orphan sweep lists every scangate object in the cluster. It runs when scangate
        # starts and then hourly here (default: every 60 s), so that no sweep lands inside a
        # measurement by chance, and so that the reaper, with nothing due for an hour, can be
        # woken by a short grant (see bench/expiry.py).
        "reaper": {"sweep_interval_seconds": 3600},
        "policies": [
            {
                "name": "bench",
                "subjects": [f"apikey:{PRINCIPAL}"],
                "namespaces": [TARGET_NAMESPACE],
                "scanners": ["exec"],
                "max_ttl_seconds": TTL_SECONDS,
                "max_pods": 20,
            }
        ],
    }
    if guard is not None:
        config["guard"] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": guard.port,
            "cert_file": str(guard.cert_file),
            "key_file": str(guard.key_file),
        }
    return config


@contextlib.contextmanager
def scangate_server(
    cluster: SimulatedCluster,
    database_url: str,
    directory: Path,
    guard: GuardListener | None = None,
) -> Iterator[ScangateServer]:
    """`scangate serve` (migrations already applied) until the block ends; with `guard`, the
    grant guard's listener too."""
    key, key_hash = generate_api_key()
    config_path = directory / "scangate.yaml"
    config = scangate_config(cluster, database_url, key_hash, guard)
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = directory / "scangate.log"
    command = [
        sys.executable, "-m", "app.cli", "--config", str(config_path),
        "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
            preexec_fn=_die_with_parent,
        )
    server = ScangateServer(f"http://127.0.0.1:{port}", key, process.pid, log_path)
    try:
        _wait_until_ready(server, process)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: ScangateServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    with httpx.Client(timeout=2, trust_env=False) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(
                    f"scangate exited with {process.returncode}; see {server.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{server.url}/readyz").status_code == 200:
                    return
            time.sleep(0.05)
    raise BenchError(f"scangate did not become ready in {_START_TIMEOUT:.0f}s")


class ScangateClient:
    """The benchmark's client of scangate: one keep-alive connection per concurrent caller.

    `http="raw"` (the default) is `bench.http`'s minimal client; `http="httpx"` uses httpx
    instead, to show what a heavier client adds (see bench/http.py for why it is not the
    default).
    """

    def __init__(self, server: ScangateServer, *, connections: int, http: str = "raw") -> None:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        self._raw: HttpClient | None = None
        self._httpx: httpx.AsyncClient | None = None
        if http == "raw":
            self._raw = HttpClient(server.url, connections=connections, headers=headers)
        elif http == "httpx":
            self._httpx = httpx.AsyncClient(
                base_url=server.url,
                headers=headers,
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
                timeout=120,
                trust_env=False,
            )
        else:
            raise ValueError(f"unknown HTTP client {http!r}")

    async def __aenter__(self) -> ScangateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._raw is not None:
            await self._raw.aclose()
        if self._httpx is not None:
            await self._httpx.aclose()

    async def _request(self, method: str, path: str, body: Any = None) -> HttpResponse:
        if self._raw is not None:
            return await self._raw.request(method, path, body)
        assert self._httpx is not None
        response = await self._httpx.request(method, path, json=body)
        return HttpResponse(response.status_code, response.content)

    async def create_grant(self, ttl_seconds: int = TTL_SECONDS) -> str:
        body = {**GRANT_BODY, "ttl_seconds": ttl_seconds}
        response = _expect(await self._request("POST", "/v1/grants", body), 201, "POST grant")
        grant_id: str = response.json()["id"]
        return grant_id

    async def kubeconfig(self, grant_id: str) -> None:
        response = await self._request("GET", f"/v1/grants/{grant_id}/kubeconfig")
        _expect(response, 200, "GET kubeconfig")

    async def token(self, grant_id: str) -> str:
        """The bearer token of a freshly fetched kubeconfig of the grant."""
        response = await self._request("GET", f"/v1/grants/{grant_id}/kubeconfig")
        document = yaml.safe_load(_expect(response, 200, "GET kubeconfig").text)
        token: str = document["users"][0]["user"]["token"]
        return token

    async def revoke(self, grant_id: str) -> None:
        response = await self._request("POST", f"/v1/grants/{grant_id}/revoke", {})
        status = _expect(response, 200, "POST revoke").json()["status"]
        if status != "revoked":
            raise BenchError(f"revoke left grant {grant_id} {status}")


def _expect(response: HttpResponse, status: int, what: str) -> HttpResponse:
    if response.status != status:
        raise BenchError(f"{what} answered {response.status}: {response.text[:300]}")
    return response

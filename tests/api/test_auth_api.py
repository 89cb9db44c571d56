"""Authentication over HTTP: `GET /v1/whoami`, 401 problems, the admin flag, and that no
credential is ever reflected in a response or written to the log. Also the operations
endpoints (`/healthz`, `/readyz`) and `scangate serve` as a real server."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from kubesim.pytest_plugin import KubesimHandle

CI_KEY = "sg_ci-payments-key-0123456789abcdefghijklmnopq"
ROOT_KEY = "sg_root-key-0123456789abcdefghijklmnopqrstuvwxyz"
GITHUB = "https://token.actions.githubusercontent.com"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A well-formed kubeconfig whose API server does not exist (port 1 refuses)."""
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "admin-token-for-nowhere"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def config(database_url: str, kubeconfig: Path) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "clusters": [{"name": "default", "kubeconfig": str(kubeconfig)}],
        "api_keys": [
            {"name": "ci-payments", "sha256": sha256(CI_KEY)},
            {"name": "root", "sha256": sha256(ROOT_KEY)},
        ],
        "admins": ["apikey:root"],
        "policies": [
            {
                "name": "payments-ci",
                "subjects": ["apikey:ci-payments", f"oidc:{GITHUB}#repo:acme/payments:*"],
                "namespaces": ["payments", "payments-*"],
                "scanners": ["exec", "debug"],
                "max_ttl_seconds": 1800,
                "max_pods": 5,
            },
            {
                "name": "orders-ci",
                "subjects": ["apikey:ci-orders"],
                "namespaces": ["orders"],
                "scanners": ["exec"],
            },
        ],
        "reaper": {"enabled": False},
    }


async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scangate") as http:
            yield http


@pytest.fixture
async def client(sqlite_url: str, unreachable_kubeconfig: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(**config(sqlite_url, unreachable_kubeconfig)), start_reaper=False)
    async for http in running(app):
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_whoami_names_the_principal_and_its_policies(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/whoami", headers=bearer(CI_KEY))

    assert response.status_code == 200
    assert response.json() == {
        "principal": "apikey:ci-payments",
        "kind": "apikey",
        "is_admin": False,
        "policies": [
            {
                "name": "payments-ci",
                "clusters": ["default"],
                "namespaces": ["payments", "payments-*"],
                "scanners": ["exec", "debug"],
                "max_ttl_seconds": 1800,
                "max_pods": 5,
                "max_lifetime_seconds": 1800,
                # The default: everything, as before the setting existed.
                "allow_pods_with": [
                    "service_account_token",
                    "secret_volumes",
                    "secret_env",
                    "configmap_volumes",
                    "configmap_env",
                ],
            }
        ],
    }


async def test_whoami_never_reveals_other_principals_subjects(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/whoami", headers=bearer(CI_KEY))

    assert "subjects" not in response.text
    assert GITHUB not in response.text
    assert "orders-ci" not in response.text


async def test_admin_principal_is_flagged(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/whoami", headers=bearer(ROOT_KEY))

    assert response.json() == {
        "principal": "apikey:root",
        "kind": "apikey",
        "is_admin": True,
        "policies": [],
    }


async def test_missing_credentials_get_a_401_problem_with_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/whoami")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="scangate"'
    body = response.json()
    assert body["type"] == "https://scangate.dev/problems/unauthorized"
    assert body["instance"] == "/v1/whoami"
    assert "Bearer" in body["detail"]


async def test_unknown_key_is_rejected_without_being_reflected(
    client: httpx.AsyncClient,
) -> None:
    forged = "sg_forged-key-0123456789abcdefghijklmnopqrstuv"
    response = await client.get("/v1/whoami", headers=bearer(forged))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="scangate", error="invalid_token"'
    assert response.json()["detail"] == "invalid credentials"
    assert forged not in response.text


async def test_non_bearer_scheme_is_rejected_without_being_reflected(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/whoami", headers={"Authorization": f"Basic {CI_KEY}"})

    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert CI_KEY not in response.text
    assert "Bearer scheme" in response.json()["detail"]


async def test_credentials_never_reach_the_log(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "sg_forged-key-0123456789abcdefghijklmnopqrstuv"

    await client.get("/v1/whoami", headers=bearer(CI_KEY))
    await client.get("/v1/whoami", headers=bearer(forged))
    await client.get("/v1/whoami", headers={"Authorization": f"Basic {ROOT_KEY}"})

    for secret in (CI_KEY, forged, ROOT_KEY):
        assert secret not in caplog.text


async def test_openapi_documents_bearer_authentication(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/whoami"]["get"]["security"] == [{"HTTPBearer": []}]


async def test_healthz_answers_while_dependencies_are_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "config": {"generation": 1, "last_reload": None}},
    )


async def test_readyz_names_the_unreachable_cluster(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://scangate.dev/problems/not-ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cluster default"] != "ok"
    assert "cluster default" in body["detail"]
    assert "database" not in body["detail"]
    assert "admin-token-for-nowhere" not in response.text


async def test_readyz_names_an_unreachable_database(unreachable_kubeconfig: Path) -> None:
    settings = Settings(
        **config("postgresql+psycopg://u:hunter2@127.0.0.1:1/none", unreachable_kubeconfig)
    )
    async for http in running(create_app(settings, start_reaper=False)):
        response = await http.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] != "ok"
    assert "database" in body["detail"]
    assert "hunter2" not in response.text


async def test_readyz_is_ready_when_database_and_cluster_answer(
    sqlite_url: str, kubesim: KubesimHandle
) -> None:
    settings = Settings(**config(sqlite_url, Path(kubesim.admin_kubeconfig)))
    async for http in running(create_app(settings, start_reaper=False)):
        response = await http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cluster default": "ok"},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path, unreachable_kubeconfig: Path) -> Iterator[tuple[str, str]]:
    """`scangate serve` as a real process on a fresh SQLite file: (base URL, database URL)."""
    database_url = f"sqlite:///{tmp_path / 'served.db'}"
    config_path = tmp_path / "scangate.yaml"
    config_path.write_text(yaml.safe_dump(config(database_url, unreachable_kubeconfig)))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "app.cli", "--config", str(config_path)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base_url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(f"scangate serve exited:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield base_url, database_url
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert CI_KEY not in log_path.read_text()


def test_serve_migrates_at_start_and_answers_whoami(served: tuple[str, str]) -> None:
    base_url, database_url = served

    response = httpx.get(f"{base_url}/v1/whoami", headers=bearer(CI_KEY), timeout=5)

    assert response.json()["principal"] == "apikey:ci-payments"
    import sqlite3

    connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()
    assert {"grants", "alembic_version"} <= tables

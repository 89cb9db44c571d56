"""Fixtures of the grants API suite.

Everything runs for real: the app from `create_app`, its lifespan (database engine, cluster
clients, reaper), migrations applied the way production applies them, kubesim over a socket (HTTPS),
and the real kubectl. Async tests run on asyncio through anyio's pytest plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client as k8s
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import update

from app.auth import generate_api_key, hash_api_key
from app.db.engine import Database, run_migrations
from app.db.models import Grant
from app.grants import repository
from app.grants.clock import utcnow
from app.grants.ids import new_grant_id
from app.main import create_app
from app.services import Services, services_of
from app.settings import Settings, load_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim(kubesim_tls: Any) -> Any:
    """The simulated cluster of this suite: kubesim over HTTPS, because kubectl only sends bearer
    tokens over TLS and issued kubeconfigs must carry the cluster's CA (never
    insecure-skip-tls-verify)."""
    return kubesim_tls


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A fresh database (SQLite and PostgreSQL) migrated to head, as `scangate migrate` does."""
    run_migrations(database_url)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = Database(migrated_url)
    yield database
    await database.dispose()


def grant_row(**overrides: Any) -> Grant:
    """A grant row as provisioning would write it; override what the test is about."""
    now = utcnow()
    grant_id = overrides.pop("id", None) or new_grant_id()
    values: dict[str, Any] = {
        "id": grant_id,
        "status": "active",
        "cluster": "default",
        "namespace": "payments",
        "scanner": "exec",
        "pods": ["web-0"],
        "selector": None,
        "requester": "apikey:alice",
        "policy": "payments-ci",
        "reason": None,
        "service_account": f"system:serviceaccount:scangate-grants:scangate-{grant_id}",
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=900),
        "attempts": 0,
    }
    values.update(overrides)
    return Grant(**values)


async def insert_grants(db: Database, *grants: Grant) -> None:
    """Store grant rows as they are (the service itself creates grants through its writer)."""
    async with db.session() as session:
        session.add_all(grants)


# -- the running service ------------------------------------------------------------------------

GRANTS_NAMESPACE = "scangate-grants"
PRINCIPALS = ("alice", "bob", "carol", "root")


@pytest.fixture
def api_keys() -> dict[str, str]:
    """A fresh random API key per principal (so tests can search for them afterwards)."""
    return {name: generate_api_key()[0] for name in PRINCIPALS}


def scangate_config(
    *, kubeconfig: str, database_url: str, api_keys: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """The YAML document of a test deployment: alice and bob share the payments policy, carol
    may only exec into orders, root is an admin without any policy."""
    config: dict[str, Any] = {
        "database_url": database_url,
        "clusters": [
            {"name": "default", "kubeconfig": kubeconfig, "grants_namespace": GRANTS_NAMESPACE}
        ],
        "api_keys": [{"name": name, "sha256": hash_api_key(key)} for name, key in api_keys.items()],
        "admins": ["apikey:root"],
        "policies": [
            {
                "name": "payments-ci",
                "subjects": ["apikey:alice", "apikey:bob"],
                "namespaces": ["payments"],
                "scanners": ["exec", "debug", "sidecar"],
                "max_ttl_seconds": 3600,
                "max_pods": 20,
                "max_lifetime_seconds": 7200,
            },
            {
                "name": "orders-exec",
                "subjects": ["apikey:carol"],
                "namespaces": ["orders", "missing-*"],
                "scanners": ["exec"],
                "max_ttl_seconds": 600,
                "max_pods": 1,
            },
        ],
        "sidecar_container": "scanner",
        "reaper": {"provisioning_timeout_seconds": 120, "sweep_interval_seconds": 60},
    }
    config.update(overrides)
    return config


class Scangate:
    """One running app (lifespan entered) and an HTTP client speaking to it as any principal."""

    def __init__(self, app: FastAPI, http: httpx.AsyncClient, api_keys: dict[str, str]) -> None:
        self.app = app
        self.http = http
        self.api_keys = api_keys

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[who]}"}

    async def request(
        self, method: str, path: str, *, who: str = "alice", **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, path, headers=self.auth(who), **kwargs)

    async def create(self, who: str = "alice", **body: Any) -> httpx.Response:
        body.setdefault("namespace", "payments")
        body.setdefault("scanner", "exec")
        if "selector" not in body:
            body.setdefault("pods", ["web-0"])
        return await self.request("POST", "/v1/grants", who=who, json=body)

    async def grant(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        response = await self.create(who, **body)
        assert response.status_code == 201, response.text
        grant: dict[str, Any] = response.json()
        assert grant["status"] == "active"
        return grant

    async def get(self, grant_id: str, who: str = "alice") -> httpx.Response:
        return await self.request("GET", f"/v1/grants/{grant_id}", who=who)

    async def status_of(self, grant_id: str) -> str:
        async with self.services.db.session() as session:
            grant = await repository.get_grant(session, grant_id)
        assert grant is not None
        return grant.status

    async def kubeconfig(self, grant_id: str, who: str = "alice") -> httpx.Response:
        return await self.request("GET", f"/v1/grants/{grant_id}/kubeconfig", who=who)

    async def revoke(self, grant_id: str, who: str = "alice", **body: Any) -> httpx.Response:
        return await self.request("POST", f"/v1/grants/{grant_id}/revoke", who=who, json=body)

    async def events(self, grant_id: str, who: str = "alice") -> list[dict[str, Any]]:
        response = await self.request("GET", f"/v1/grants/{grant_id}/events", who=who)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def expire_soon(self, *grant_ids: str, seconds: float = 0.0) -> datetime:
        """Move grants' expiry to `seconds` from now, as if their TTL ran out (the API's minimum
        TTL is 30 s; tests should not wait that long), and wake the reaper."""
        moment = utcnow() + timedelta(seconds=seconds)
        async with self.services.db.session() as session:
            await session.execute(
                update(Grant).where(Grant.id.in_(grant_ids)).values(expires_at=moment)
            )
        if self.services.reaper is not None:
            self.services.reaper.wake()
        return moment

    async def wait_for_status(
        self, grant_id: str, statuses: set[str], *, within: float = 10.0
    ) -> str:
        deadline = time.monotonic() + within
        while True:
            status = await self.status_of(grant_id)
            if status in statuses or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.05)


class Deployment:
    """A scangate configuration (YAML file, as operators write it) that can start apps."""

    def __init__(self, tmp_path: Path, api_keys: dict[str, str], document: dict[str, Any]) -> None:
        self.tmp_path = tmp_path
        self.api_keys = api_keys
        self.document = document
        self.config_path = tmp_path / "scangate.yaml"
        self.config_path.write_text(yaml.safe_dump(document))

    @property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    def reconfigure(self, **overrides: Any) -> None:
        self.document.update(overrides)
        self.config_path.write_text(yaml.safe_dump(self.document))

    @contextlib.asynccontextmanager
    async def running(self, *, start_reaper: bool = True) -> AsyncIterator[Scangate]:
        app = create_app(self.settings, start_reaper=start_reaper)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://scangate.test", timeout=60
            ) as http:
                yield Scangate(app, http, self.api_keys)


@pytest.fixture
def deployment(tmp_path: Path, sim: Any, migrated_url: str, api_keys: dict[str, str]) -> Deployment:
    document = scangate_config(
        kubeconfig=str(sim.admin_kubeconfig), database_url=migrated_url, api_keys=api_keys
    )
    return Deployment(tmp_path, api_keys, document)


@pytest.fixture
def other_installation(tmp_path: Path, sim: Any, api_keys: dict[str, str]) -> Deployment:
    """A second scangate installation on the same cluster, over the same target namespaces
    (the same policies), with its own database (SQLite) and grants namespace
    (`scangate-grants-b`); its installation id is therefore its own."""
    sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scangate-grants-b"}})
    home = tmp_path / "installation-b"
    home.mkdir()
    url = f"sqlite:///{home / 'scangate.db'}"
    run_migrations(url)
    document = scangate_config(
        kubeconfig=str(sim.admin_kubeconfig), database_url=url, api_keys=api_keys
    )
    document["clusters"][0]["grants_namespace"] = "scangate-grants-b"
    return Deployment(home, api_keys, document)


@pytest.fixture
async def scangate(deployment: Deployment) -> AsyncIterator[Scangate]:
    """The service with its reaper running."""
    async with deployment.running() as running:
        yield running


@pytest.fixture
async def scangate_without_reaper(deployment: Deployment) -> AsyncIterator[Scangate]:
    """The service alone: proves a behaviour does not depend on the reaper cleaning up."""
    async with deployment.running(start_reaper=False) as running:
        yield running


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> bool:
    """Poll `condition` until it holds or `within` seconds pass; its last value."""
    deadline = time.monotonic() + within
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


# -- the cluster, seen from outside -------------------------------------------------------------


def cluster_objects(sim: Any, grant_id: str | None = None) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of scangate-labelled objects in the cluster, read as its admin."""
    selector = (
        f"scangate.dev/grant={grant_id}" if grant_id else "app.kubernetes.io/managed-by=scangate"
    )
    api = sim.admin_client()
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    found: set[tuple[str, str, str]] = set()
    for kind, items in (
        (
            "ServiceAccount",
            core.list_service_account_for_all_namespaces(label_selector=selector).items,
        ),
        ("Role", rbac.list_role_for_all_namespaces(label_selector=selector).items),
        ("RoleBinding", rbac.list_role_binding_for_all_namespaces(label_selector=selector).items),
    ):
        found |= {(kind, item.metadata.namespace, item.metadata.name) for item in items}
    return found


def expected_objects(grant_id: str, namespace: str = "payments") -> set[tuple[str, str, str]]:
    name = f"scangate-{grant_id}"
    return {
        ("ServiceAccount", GRANTS_NAMESPACE, name),
        ("Role", namespace, name),
        ("RoleBinding", namespace, name),
    }


def token_of(kubeconfig_text: str) -> str:
    document = yaml.safe_load(kubeconfig_text)
    token: str = document["users"][0]["user"]["token"]
    return token


def token_status(sim: Any, token: str, path: str = "/api/v1/namespaces/payments/pods/web-0") -> int:
    """The HTTP status the cluster answers a request authenticated with `token`."""
    verify: Any = False
    if getattr(sim, "ca_cert_pem", None):
        verify = ssl.create_default_context(cadata=sim.ca_cert_pem.decode())
    response = httpx.get(
        sim.url + path, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=10
    )
    return response.status_code


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

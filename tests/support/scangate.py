"""A scangate deployment under test: its YAML configuration, apps started from it, and an HTTP
client that speaks to a running app as any principal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import yaml
from fastapi import FastAPI
from sqlalchemy import update

from app.auth import hash_api_key
from app.db.models import Grant
from app.grants import repository
from app.grants.clock import utcnow
from app.main import create_app
from app.services import Services, services_of
from app.settings import Settings, load_settings

GRANTS_NAMESPACE = "scangate-grants"
PRINCIPALS = ("alice", "bob", "carol", "root")


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

    async def save_kubeconfig(self, grant_id: str, path: Path) -> Path:
        """The grant's kubeconfig, fetched as its requester (alice) and saved for kubectl."""
        response = await self.kubeconfig(grant_id)
        assert response.status_code == 200, response.text
        await anyio.Path(path).write_text(response.text)
        return path

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

"""Fixtures of the client CLI suite: a real scangate service (uvicorn on a loopback socket, in a
thread) on a migrated SQLite database, driving kubesim over HTTPS (so the real kubectl accepts
the issued kubeconfigs), and helpers that run `scangate` as a user would: a separate process
with `SCANGATE_URL` / `SCANGATE_TOKEN` in its environment."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest
import uvicorn

from app.auth import generate_api_key, hash_api_key
from app.db.engine import run_migrations
from app.main import create_app
from app.settings import Settings
from tests.oidc_issuer import LocalIssuer, running_issuer

REPO = Path(__file__).resolve().parents[2]
GRANTS_NAMESPACE = "scangate-grants"


@dataclass
class Service:
    url: str
    keys: dict[str, str]  # principal name -> API key
    kubesim: Any
    issuer: LocalIssuer

    def env(self, who: str | None = "ci", **extra: str) -> dict[str, str]:
        """A CLI environment: the service URL and `who`'s API key (None: no token at all)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
        env["SCANGATE_URL"] = self.url
        if who is not None:
            env["SCANGATE_TOKEN"] = self.keys[who]
        env.update(extra)
        return env

    def scangate(
        self, *args: str, who: str | None = "ci", timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env(who, **env),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, who: str = "ci", **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env(who, **env),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def service_account_exists(self, grant_id: str) -> bool:
        core = k8s.CoreV1Api(self.kubesim.admin_client())
        accounts = core.list_namespaced_service_account(
            GRANTS_NAMESPACE, label_selector=f"scangate.dev/grant={grant_id}"
        )
        return bool(accounts.items)

    def scangate_objects(self, grant_id: str) -> list[str]:
        """Every object kubesim holds for the grant (ServiceAccount, Role, RoleBinding)."""
        api = self.kubesim.admin_client()
        selector = f"scangate.dev/grant={grant_id}"
        core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
        found = core.list_service_account_for_all_namespaces(label_selector=selector).items
        found += rbac.list_role_for_all_namespaces(label_selector=selector).items
        found += rbac.list_role_binding_for_all_namespaces(label_selector=selector).items
        return [f"{o.kind or type(o).__name__}/{o.metadata.name}" for o in found]


def service_settings(
    database_url: str,
    kubeconfig: str,
    keys: dict[str, str],
    issuer: LocalIssuer,
    *,
    max_ttl_seconds: int = 3600,
    max_lifetime_seconds: int | None = None,
) -> Settings:
    return Settings(
        database_url=database_url,
        clusters=[{"name": "default", "kubeconfig": kubeconfig}],
        api_keys=[{"name": name, "sha256": hash_api_key(key)} for name, key in keys.items()],
        oidc=[{"issuer": issuer.url, "audience": "scangate"}],
        admins=["apikey:root"],
        policies=[
            {
                "name": "payments-ci",
                "subjects": [
                    "apikey:ci",
                    "apikey:other",
                    f"oidc:{issuer.url}#repo:acme/payments:*",
                ],
                "namespaces": ["payments"],
                "scanners": ["exec", "debug"],
                "max_ttl_seconds": max_ttl_seconds,
                "max_lifetime_seconds": max_lifetime_seconds,
                "max_pods": 2,
            }
        ],
    )


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """`create_app(settings)` served by uvicorn on 127.0.0.1 until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("scangate did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def service(sqlite_url: str, kubesim_tls: Any) -> Iterator[Service]:
    run_migrations(sqlite_url)
    keys = {name: generate_api_key()[0] for name in ("ci", "other", "root", "nobody")}
    with running_issuer() as issuer:
        settings = service_settings(sqlite_url, str(kubesim_tls.admin_kubeconfig), keys, issuer)
        with serving(settings) as url:
            yield Service(url=url, keys=keys, kubesim=kubesim_tls, issuer=issuer)


@pytest.fixture
def capped_service(sqlite_url: str, kubesim_tls: Any) -> Iterator[Service]:
    """The service with a policy whose grants live 30 s at most, renewals included."""
    run_migrations(sqlite_url)
    keys = {name: generate_api_key()[0] for name in ("ci", "other", "root", "nobody")}
    with running_issuer() as issuer:
        settings = service_settings(
            sqlite_url, str(kubesim_tls.admin_kubeconfig), keys, issuer,
            max_ttl_seconds=30, max_lifetime_seconds=30,
        )  # fmt: skip
        with serving(settings) as url:
            yield Service(url=url, keys=keys, kubesim=kubesim_tls, issuer=issuer)


def wait_for(condition: Any, *, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def kubectl(kubeconfig: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(text: str) -> Sequence[str]:
    return [line for line in text.splitlines() if line.strip()]

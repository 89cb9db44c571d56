"""A real scangate service for the client CLI suite (uvicorn on a loopback socket, in a thread)
and `scangate` run as a user runs it: a separate process with `SCANGATE_URL` /
`SCANGATE_TOKEN` in its environment."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes.client as k8s
import uvicorn

from app.auth import hash_api_key
from app.main import create_app
from app.settings import Settings
from kubesim.pytest_plugin import KubesimHandle
from tests.oidc_issuer import LocalIssuer
from tests.support.cli_process import ScangateCli
from tests.support.scangate import GRANTS_NAMESPACE


@dataclass
class Service(ScangateCli):
    url: str
    keys: dict[str, str]  # principal name -> API key
    kubesim: KubesimHandle
    issuer: LocalIssuer

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
        found: list[k8s.V1ServiceAccount | k8s.V1Role | k8s.V1RoleBinding] = []
        found += core.list_service_account_for_all_namespaces(label_selector=selector).items
        found += rbac.list_role_for_all_namespaces(label_selector=selector).items
        found += rbac.list_role_binding_for_all_namespaces(label_selector=selector).items
        return [f"{o.kind or type(o).__name__}/{o.metadata and o.metadata.name}" for o in found]


def service_settings(
    database_url: str,
    kubeconfig: str,
    keys: dict[str, str],
    issuer: LocalIssuer,
    *,
    max_ttl_seconds: int = 3600,
    max_lifetime_seconds: int | None = None,
    approval: dict[str, Any] | None = None,
) -> Settings:
    """`approval`: the policy's approval section (issue 19), when its grants need approvers."""
    policy_extra = {} if approval is None else {"approval": approval}
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
                **policy_extra,
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


def lines(text: str) -> Sequence[str]:
    """The non-blank lines of a command's output."""
    return [line for line in text.splitlines() if line.strip()]

"""End to end: the real kubectl, through kubesim acting as kube-apiserver with the grant
guard registered as a ValidatingWebhookConfiguration, against scangate's guard listener over
HTTPS, with grants made through scangate's REST API (SQLite and PostgreSQL); and the chart
installed with real Helm, whose own identities and generated certificate are all the guard
needs.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from kubernetes import client as k8s

from app.auth import generate_api_key, hash_api_key
from app.db.engine import run_migrations
from app.guard.server import SharedSignalsServer, guard_config
from app.main import create_app
from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.chart.helm_runner import IMAGE_VALUES, install_chart
from tests.support.guard import TlsFiles

pytestmark = pytest.mark.anyio

HOOK = "guard.scangate.dev"


@dataclass
class Cluster:
    sim: KubesimHandle
    api: httpx.AsyncClient
    key: str
    tmp_path: Path
    guard: SharedSignalsServer
    guard_task: asyncio.Task[None]
    guard_url: str

    async def grant(self, **body: Any) -> dict[str, Any]:
        body = {"namespace": "payments", "pods": ["web-0"], **body}
        response = await self.api.post("/v1/grants", json=body)
        assert response.status_code == 201, response.text
        grant: dict[str, Any] = response.json()
        return grant

    async def kubeconfig(self, grant_id: str) -> Path:
        response = await self.api.get(f"/v1/grants/{grant_id}/kubeconfig")
        assert response.status_code == 200, response.text
        path = self.tmp_path / f"{grant_id}.kubeconfig"
        path.write_text(response.text)
        return path

    async def events(self, grant_id: str) -> list[dict[str, Any]]:
        response = await self.api.get(f"/v1/grants/{grant_id}/events")
        assert response.status_code == 200, response.text
        return [e for e in response.json()["items"] if e["type"] in GUARD_EVENTS]


GUARD_EVENTS = ("exec", "attach", "debug_container")


async def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        "kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=20s",
        "--cache-dir", str(kubeconfig.with_name("kubectl-cache")), *args,
    ]  # fmt: skip
    # In a worker thread: the guard answering kubesim runs on this test's event loop.
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    )


@pytest.fixture
async def cluster(
    kubesim_tls: KubesimHandle, database_url: str, tls_files: TlsFiles, tmp_path: Path
) -> AsyncIterator[Cluster]:
    run_migrations(database_url)
    key = generate_api_key()[0]
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "clusters": [
                    {
                        "name": "default",
                        "kubeconfig": str(kubesim_tls.admin_kubeconfig),
                        "grants_namespace": "scangate-grants",
                    }
                ],
                "api_keys": [{"name": "alice", "sha256": hash_api_key(key)}],
                "policies": [
                    {
                        "name": "payments-ci",
                        "subjects": ["apikey:alice"],
                        "namespaces": ["payments"],
                        "scanners": ["exec", "debug"],
                        "debug_images": ["busybox:1.36"],
                    }
                ],
                "guard": {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": _free_port(),
                    "cert_file": str(tls_files.cert_file),
                    "key_file": str(tls_files.key_file),
                },
            }
        )
    )
    settings = load_settings(config)
    guard_server_config = guard_config(settings, log_level="warning")[0]
    # kubesim keeps its connections to the webhook open; the test need not wait for them.
    guard_server_config.timeout_graceful_shutdown = 1
    guard_server = SharedSignalsServer(guard_server_config)
    serving = asyncio.create_task(guard_server.serve())
    while not guard_server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    guard_url = f"https://localhost:{settings.guard.port}/admission/default"
    _register_guard(kubesim_tls, guard_url, tls_files.ca_pem)

    app = create_app(settings, start_reaper=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://scangate.test",
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            ) as api:
                yield Cluster(kubesim_tls, api, key, tmp_path, guard_server, serving, guard_url)
    finally:
        guard_server.should_exit = True
        await serving


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _register_guard(sim: KubesimHandle, url: str, ca_pem: bytes) -> None:
    """The chart's registration (helm/scangate/templates/guard-webhook.yaml), with a URL
    instead of the in-cluster Service."""
    body = {
        "metadata": {"name": "scangate-guard-scangate"},
        "webhooks": [
            {
                "name": HOOK,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "NoneOnDryRun",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CONNECT"],
                        "resources": ["pods/exec", "pods/attach"],
                        "scope": "Namespaced",
                    },
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["pods/ephemeralcontainers"],
                        "scope": "Namespaced",
                    },
                ],
                "matchConditions": [
                    {
                        "name": "grant-identities-only",
                        "expression": "request.userInfo.username.startsWith("
                        "'system:serviceaccount:scangate-grants:scangate-')",
                    }
                ],
            }
        ],
    }
    with sim.admin_client() as api:
        k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(body)


async def test_exec_reaches_only_the_grants_containers_and_is_recorded_with_its_argv(
    cluster: Cluster,
) -> None:
    grant = await cluster.grant(scanner="exec", containers=["app"])
    kubeconfig = await cluster.kubeconfig(grant["id"])

    allowed = await kubectl(kubeconfig, "exec", "web-0", "-c", "app", "--", "cat", "/etc/hostname")
    refused = await kubectl(kubeconfig, "exec", "web-0", "-c", "scanner", "--", "id")

    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == "web-0\n"
    assert refused.returncode == 1
    assert refused.stderr == (
        f'Error from server (Forbidden): admission webhook "{HOOK}" denied the request: container '
        f"'scanner' of pod 'web-0' is not allowed: grant {grant['id']} allows only app\n"
    )
    events = await cluster.events(grant["id"])
    # kubectl retries a refused WebSocket exec over SPDY: each attempt is a decision.
    assert {(e["type"], e["detail"]["container"], tuple(e["detail"]["argv"]),
             e["detail"]["verdict"]) for e in events} == {
        ("exec", "app", ("cat", "/etc/hostname"), "allowed"),
        ("exec", "scanner", ("id",), "denied"),
    }  # fmt: skip


async def test_exec_after_revoke_is_refused_even_while_the_token_still_authenticates(
    cluster: Cluster,
) -> None:
    grant = await cluster.grant(scanner="exec")
    kubeconfig = await cluster.kubeconfig(grant["id"])
    # Only the database learns of the revocation (as in the API server's token-cache window,
    # where the deleted ServiceAccount's token and RBAC still work): the guard refuses anyway.
    from sqlalchemy import update

    from app.db.engine import Database
    from app.db.models import Grant

    database = Database(load_settings(cluster.tmp_path / "scangate.yaml").database_url)
    async with database.session() as session:
        await session.execute(update(Grant).where(Grant.id == grant["id"]).values(status="revoked"))
    await database.dispose()

    result = await kubectl(kubeconfig, "exec", "web-0", "-c", "app", "--", "id")
    assert result.returncode == 1
    assert f"denied the request: grant {grant['id']} is revoked, not active" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--image=alpine:3.20", "--profile=restricted"],
         "image 'alpine:3.20' is not allowed by policy 'payments-ci' (debug_images: busybox:1.36)"),
        (["--image=busybox:1.36", "--profile=sysadmin"],
         "securityContext.privileged is true"),
        (["--image=busybox:1.36", "--profile=general"],
         "the container would run as root"),
        (["--image=busybox:1.36", "--profile=restricted", "--target=scanner"],
         "targetContainerName 'scanner' is not one of the grant's containers (app)"),
    ],
)  # fmt: skip
async def test_unsafe_kubectl_debug_is_refused_with_the_reason_and_adds_nothing(
    cluster: Cluster, args: list[str], reason: str
) -> None:
    grant = await cluster.grant(scanner="debug", containers=["app"])
    kubeconfig = await cluster.kubeconfig(grant["id"])

    result = await kubectl(kubeconfig, "debug", "web-0", "-c", "dbg", *args)

    assert result.returncode == 1
    assert f'admission webhook "{HOOK}" denied the request: debug container ' in result.stderr
    assert reason in result.stderr
    with cluster.sim.admin_client() as api:
        pod = k8s.CoreV1Api(api).read_namespaced_pod("web-0", "payments")
    assert not pod.spec.ephemeral_containers
    [event] = await cluster.events(grant["id"])
    assert (event["type"], event["detail"]["verdict"]) == ("debug_container", "denied")


async def test_restricted_kubectl_debug_with_the_allowed_image_works_and_can_be_attached(
    cluster: Cluster,
) -> None:
    grant = await cluster.grant(scanner="debug", containers=["app"])
    kubeconfig = await cluster.kubeconfig(grant["id"])

    added = await kubectl(
        kubeconfig, "debug", "web-0", "-c", "dbg", "--image=busybox:1.36",
        "--profile=restricted", "--target=app",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    events = await cluster.events(grant["id"])
    [debug] = events
    assert debug["type"] == "debug_container"
    assert debug["detail"]["image"] == "busybox:1.36"
    assert debug["detail"]["security"]["allowPrivilegeEscalation"] is False
    assert debug["detail"]["verdict"] == "allowed"


async def test_while_the_guard_is_down_grant_identities_are_refused_and_others_are_not(
    cluster: Cluster,
) -> None:
    grant = await cluster.grant(scanner="exec")
    kubeconfig = await cluster.kubeconfig(grant["id"])
    cluster.guard.should_exit = True
    await cluster.guard_task

    refused = await kubectl(kubeconfig, "exec", "web-0", "-c", "app", "--", "id")
    admin = cluster.sim.admin_kubeconfig
    unaffected = await kubectl(admin, "exec", "-n", "payments", "web-0", "-c", "app", "--", "id")

    assert refused.returncode == 1
    assert f'failed calling webhook "{HOOK}"' in refused.stderr
    assert unaffected.returncode == 0, unaffected.stderr


async def test_the_chart_registered_guard_works_with_only_the_charts_identities(
    kubesim_factory: Any, database_url: str, tmp_path: Path
) -> None:
    """Real Helm installs the chart (webhook registration and generated certificate) into a
    kubesim that maps the chart's Service to a local guard listener serving the chart's own
    certificate; scangate provisions with the chart's ServiceAccount only."""
    port = _free_port()
    sim = kubesim_factory(tls=True, service_addresses={"scangate/scangate": f"127.0.0.1:{port}"})
    sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scangate"}})
    policy = {
        "name": "payments-ci", "subjects": ["apikey:alice"], "namespaces": ["payments"],
        "scanners": ["exec", "debug"], "debug_images": ["busybox:1.36"],
    }  # fmt: skip
    helm_home = tmp_path / "helm"
    helm_home.mkdir()
    release = install_chart(
        helm_home,
        kubeconfig=sim.token_kubeconfig(
            sim.admin_token, tmp_path / "helm.kubeconfig", for_kubectl=True
        ),
        values={
            **IMAGE_VALUES,
            "replicaCount": 1,
            "database": {"existingSecret": "", "sqlite": {"persistence": {"enabled": False}}},
            "grantsNamespace": {"create": False},
            "targetNamespaces": ["payments"],
            "scanners": ["exec", "debug"],
            "config": {"policies": [policy]},
        },
    )
    # scangate acts only as the chart's ServiceAccount, with the token its pod would get.
    with sim.admin_client() as admin:
        token = (
            k8s.CoreV1Api(admin)
            .create_namespaced_service_account_token(
                "scangate", "scangate", {"spec": {"expirationSeconds": 3600}}
            )
            .status.token
        )
    chart_kubeconfig = sim.token_kubeconfig(token, tmp_path / "chart-sa.kubeconfig")
    secret = release.get("Secret", "scangate-guard-tls")["data"]
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(base64.b64decode(secret["tls.crt"]))
    key_file.write_bytes(base64.b64decode(secret["tls.key"]))

    run_migrations(database_url)
    key = generate_api_key()[0]
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "clusters": [
                    {"name": "default", "kubeconfig": str(chart_kubeconfig),
                     "grants_namespace": "scangate-grants"}
                ],
                "api_keys": [{"name": "alice", "sha256": hash_api_key(key)}],
                "policies": [policy],
                "guard": {"enabled": True, "host": "127.0.0.1", "port": port,
                          "cert_file": str(cert_file), "key_file": str(key_file)},
            }
        )
    )  # fmt: skip
    settings = load_settings(config)
    guard_server_config = guard_config(settings, log_level="warning")[0]
    guard_server_config.timeout_graceful_shutdown = 1
    guard_server = SharedSignalsServer(guard_server_config)
    serving = asyncio.create_task(guard_server.serve())
    while not guard_server.started:  # noqa: ASYNC110 (uvicorn offers no startup event)
        await asyncio.sleep(0.02)
    app = create_app(settings, start_reaper=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://scangate.test",
                headers={"Authorization": f"Bearer {key}"}, timeout=60,
            ) as api:  # fmt: skip
                created = await api.post(
                    "/v1/grants",
                    json={"namespace": "payments", "pods": ["web-0"], "scanner": "debug",
                          "containers": ["app"]},
                )  # fmt: skip
                assert created.status_code == 201, created.text
                grant_id = created.json()["id"]
                kubeconfig = tmp_path / "grant.kubeconfig"
                kubeconfig.write_text((await api.get(f"/v1/grants/{grant_id}/kubeconfig")).text)

                allowed = await kubectl(kubeconfig, "exec", "web-0", "-c", "app", "--", "id")
                refused = await kubectl(kubeconfig, "exec", "web-0", "-c", "scanner", "--", "id")
                debug = await kubectl(
                    kubeconfig, "debug", "web-0", "-c", "dbg", "--image=busybox:1.36",
                    "--profile=restricted", "--target=app",
                )  # fmt: skip
                events = (await api.get(f"/v1/grants/{grant_id}/events")).json()["items"]
    finally:
        guard_server.should_exit = True
        await serving

    assert allowed.returncode == 0, allowed.stderr
    assert refused.returncode == 1
    assert f"admission webhook \"{HOOK}\" denied the request: container 'scanner'" in (
        refused.stderr
    )
    assert debug.returncode == 0, debug.stderr
    assert {e["type"] for e in events} >= {"exec", "debug_container"}

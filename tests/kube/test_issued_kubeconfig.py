"""An issued kubeconfig, used by the real kubectl against kubesim over HTTP and HTTPS.

kubectl never sends a bearer token over plain http:// (kubernetes/kubectl#744; checked on these
machines with a header-logging server). Over HTTP the test therefore lets kubectl carry the same
token in the server URL, which kubesim accepts; everything else (cluster, context, namespace,
current-context) is the rendered kubeconfig as issued. Over HTTPS the file is used unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.kube.clusters import ClusterClient
from app.kube.kubeconfig import render_kubeconfig
from app.kube.profiles import profile_rules
from tests.support.kube import cluster_client, grant_target
from tests.support.kubectl import kubectl

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["http", "https"])
async def any_cluster(request: pytest.FixtureRequest) -> AsyncIterator[ClusterClient]:
    handle: Any = request.getfixturevalue("kubesim" if request.param == "http" else "kubesim_tls")
    client = await cluster_client(Path(handle.admin_kubeconfig))
    assert client.server.startswith(f"{request.param}://")
    yield client
    await client.aclose()


async def issue(cluster: ClusterClient, tmp_path: Path, scanner: str = "exec") -> Path:
    target = grant_target(scanner=scanner)
    await cluster.create_service_account(target)
    await cluster.create_role(target, profile_rules(scanner, ["web-0"]))
    await cluster.create_role_binding(target)
    token = await cluster.request_token(target.grant_id, 600)
    rendered = render_kubeconfig(cluster, target.grant_id, "payments", token.token)
    path = tmp_path / f"issued-{scanner}.kubeconfig"
    path.write_text(yaml.safe_dump(for_kubectl(rendered)))
    path.chmod(0o600)
    return path


def for_kubectl(rendered: dict[str, Any]) -> dict[str, Any]:
    """The rendered kubeconfig, with the token also in the server URL when it is plain HTTP."""
    document = copy.deepcopy(rendered)
    entry = document["clusters"][0]["cluster"]
    if entry["server"].startswith("http://"):
        token = document["users"][0]["user"]["token"]
        entry["server"] = entry["server"].replace("http://", f"http://kubesim:{token}@", 1)
    return document


def can_i(kubeconfig: Path, *args: str) -> str:
    result = kubectl(kubeconfig, "auth", "can-i", *args)
    return result.stdout.strip() or result.stderr.strip()


async def test_kubectl_gets_the_granted_pod(any_cluster: ClusterClient, tmp_path: Path) -> None:
    kubeconfig = await issue(any_cluster, tmp_path)
    result = kubectl(kubeconfig, "get", "pod", "web-0", "-n", "payments", "-o", "name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pod/web-0"
    # The context's namespace is the target namespace, so -n is not needed either.
    assert kubectl(kubeconfig, "get", "pod", "web-0").returncode == 0


async def test_kubectl_cannot_get_other_pods(any_cluster: ClusterClient, tmp_path: Path) -> None:
    kubeconfig = await issue(any_cluster, tmp_path)
    result = kubectl(kubeconfig, "get", "pod", "web-1", "-n", "payments")
    assert result.returncode != 0
    assert "forbidden" in result.stderr.lower()


async def test_auth_can_i_matches_the_exec_profile(
    any_cluster: ClusterClient, tmp_path: Path
) -> None:
    kubeconfig = await issue(any_cluster, tmp_path)
    assert can_i(kubeconfig, "get", "pods/web-0", "-n", "payments") == "yes"
    assert (
        can_i(kubeconfig, "create", "pods/web-0", "--subresource=exec", "-n", "payments") == "yes"
    )
    assert can_i(kubeconfig, "get", "pods/web-0", "--subresource=log", "-n", "payments") == "yes"
    assert can_i(kubeconfig, "get", "pods/web-1", "-n", "payments") == "no"
    assert can_i(kubeconfig, "create", "pods/db-0", "--subresource=exec", "-n", "payments") == "no"
    assert can_i(kubeconfig, "list", "pods", "-n", "payments") == "no"
    assert can_i(kubeconfig, "create", "pods", "-n", "payments") == "no"
    assert can_i(kubeconfig, "get", "secrets/db-credentials", "-n", "payments") == "no"
    assert can_i(kubeconfig, "get", "pods/web-0", "-n", "orders") == "no"


async def test_rendered_kubeconfig_over_tls_carries_the_ca_and_verifies(
    tls_cluster: ClusterClient, tmp_path: Path
) -> None:
    kubeconfig = await issue(tls_cluster, tmp_path)
    document = yaml.safe_load(kubeconfig.read_text())
    entry = document["clusters"][0]["cluster"]
    assert "certificate-authority-data" in entry
    assert "insecure-skip-tls-verify" not in entry
    assert kubectl(kubeconfig, "get", "pod", "web-0").returncode == 0


async def test_deleting_the_grant_revokes_the_issued_token(
    any_cluster: ClusterClient, tmp_path: Path
) -> None:
    kubeconfig = await issue(any_cluster, tmp_path)
    grant_id = yaml.safe_load(kubeconfig.read_text())["current-context"].removeprefix("scangate-")
    await any_cluster.delete_grant_objects(grant_id, "payments")
    result = kubectl(kubeconfig, "get", "pod", "web-0")
    assert result.returncode != 0
    # Denied either way a real cluster may answer (401, or 403 while a cached authentication
    # of the token meets the deleted RoleBinding).
    unauthorized = "must be logged in" in result.stderr.lower()
    assert unauthorized or "(Forbidden)" in result.stderr


# (verb, subresource) pairs that kubectl auth can-i checks on the granted pod, per profile.
ALL_CHECKS = [
    ("get", ""),
    ("create", "exec"),
    ("get", "exec"),
    ("get", "log"),
    ("create", "attach"),
    ("get", "attach"),
    ("patch", "ephemeralcontainers"),
    ("update", "ephemeralcontainers"),
    ("delete", ""),
    ("patch", ""),
]
ALLOWED = {
    "exec": {("get", ""), ("create", "exec"), ("get", "exec"), ("get", "log")},
    "debug": {
        ("get", ""),
        ("create", "exec"),
        ("get", "exec"),
        ("get", "log"),
        ("create", "attach"),
        ("get", "attach"),
        ("patch", "ephemeralcontainers"),
        ("update", "ephemeralcontainers"),
    },
    "sidecar": {("get", ""), ("get", "log")},
}


@pytest.mark.parametrize("scanner", ["exec", "debug", "sidecar"])
async def test_auth_can_i_is_yes_for_exactly_the_profile(
    tls_cluster: ClusterClient, tmp_path: Path, scanner: str
) -> None:
    kubeconfig = await issue(tls_cluster, tmp_path, scanner=scanner)
    for verb, sub in ALL_CHECKS:
        args = [verb, "pods/web-0", "-n", "payments"]
        if sub:
            args.append(f"--subresource={sub}")
        expected = "yes" if (verb, sub) in ALLOWED[scanner] else "no"
        assert can_i(kubeconfig, *args) == expected, (scanner, verb, sub)
        other = [verb, "pods/web-1", "-n", "payments", *args[4:]]
        assert can_i(kubeconfig, *other) == "no", (scanner, verb, sub, "web-1")

"""Issued kubeconfigs: one cluster with its CA, one token user, one namespaced context."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import yaml
from kubernetes.aio.config import incluster_config

from app.kube.clusters import ClusterClient, ClusterRegistry, ClusterSettings
from app.kube.errors import KubeError
from app.kube.kubeconfig import render_kubeconfig
from tests.kube.kubeconfig_files import self_signed_ca_pem, write_kubeconfig

GRANT_ID = "01jb2k3m4n5p6q7r8s9t0v1w2x"

pytestmark = pytest.mark.anyio


@pytest.fixture
def ca_pem() -> bytes:
    return self_signed_ca_pem()


@pytest.fixture
async def cluster(tmp_path: Path, ca_pem: bytes) -> AsyncIterator[ClusterClient]:
    config = write_kubeconfig(
        tmp_path / "admin.kubeconfig", server="https://10.0.0.1:6443", ca_data=ca_pem
    )
    settings = ClusterSettings("prod", str(config), None, None, "scangate-grants")
    client = await ClusterClient.connect(settings)
    yield client
    await client.aclose()


async def test_kubeconfig_has_one_cluster_user_and_namespaced_context(
    cluster: ClusterClient, ca_pem: bytes
) -> None:
    rendered = render_kubeconfig(cluster, GRANT_ID, "payments", "the-token")
    name = f"scangate-{GRANT_ID}"
    assert rendered["current-context"] == name
    assert rendered["contexts"] == [
        {"name": name, "context": {"cluster": "prod", "user": name, "namespace": "payments"}}
    ]
    assert rendered["users"] == [{"name": name, "user": {"token": "the-token"}}]
    [entry] = rendered["clusters"]
    assert entry["name"] == "prod"
    assert entry["cluster"]["server"] == "https://10.0.0.1:6443"
    assert base64.b64decode(entry["cluster"]["certificate-authority-data"]) == ca_pem


async def test_kubeconfig_never_skips_tls_verification(cluster: ClusterClient) -> None:
    text = yaml.safe_dump(render_kubeconfig(cluster, GRANT_ID, "payments", "t"))
    assert "insecure" not in text


async def test_configured_public_server_replaces_the_admin_kubeconfig_server(
    tmp_path: Path, ca_pem: bytes
) -> None:
    config = write_kubeconfig(tmp_path / "k", server="https://10.0.0.1:6443", ca_data=ca_pem)
    settings = ClusterSettings("prod", str(config), None, "https://k8s.example.com", "sg")
    client = await ClusterClient.connect(settings)
    try:
        rendered = render_kubeconfig(client, GRANT_ID, "payments", "t")
    finally:
        await client.aclose()
    assert rendered["clusters"][0]["cluster"]["server"] == "https://k8s.example.com"


async def test_ca_from_a_certificate_authority_file_is_embedded_as_data(
    tmp_path: Path, ca_pem: bytes
) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca_pem)
    config = write_kubeconfig(tmp_path / "k", server="https://10.0.0.1:6443", ca_file=ca_file)
    client = await ClusterClient.connect(ClusterSettings("prod", str(config), None, None, "sg"))
    try:
        assert client.certificate_authority_data is not None
        assert base64.b64decode(client.certificate_authority_data) == ca_pem
    finally:
        await client.aclose()


async def test_cluster_without_ca_gets_no_ca_entry_and_still_no_insecure_flag(
    tmp_path: Path,
) -> None:
    config = write_kubeconfig(tmp_path / "k", server="http://127.0.0.1:8080")
    client = await ClusterClient.connect(ClusterSettings("dev", str(config), None, None, "sg"))
    try:
        entry = render_kubeconfig(client, GRANT_ID, "payments", "t")["clusters"][0]["cluster"]
    finally:
        await client.aclose()
    assert entry == {"server": "http://127.0.0.1:8080"}


async def test_context_setting_selects_the_cluster_of_that_context(
    tmp_path: Path, ca_pem: bytes
) -> None:
    config = write_kubeconfig(
        tmp_path / "k",
        server="https://first:6443",
        ca_data=ca_pem,
        extra_contexts={"second": "https://second:6443"},
    )
    registry = await ClusterRegistry.from_settings(
        [
            ClusterSettings("a", str(config), None, None, "sg"),
            ClusterSettings("b", str(config), "second", None, "sg"),
        ]
    )
    try:
        assert registry.names() == ["a", "b"]
        assert registry.get("a").server == "https://first:6443"
        assert registry.get("b").server == "https://second:6443"
        with pytest.raises(KeyError):
            registry.get("c")
    finally:
        await registry.aclose()


async def test_unreadable_kubeconfig_fails_with_a_message_naming_the_cluster(
    tmp_path: Path,
) -> None:
    settings = ClusterSettings("prod", str(tmp_path / "missing"), None, None, "sg")
    with pytest.raises(KubeError, match='cluster "prod"'):
        await ClusterClient.connect(settings)


async def test_duplicate_cluster_names_are_refused(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "k", server="http://127.0.0.1:8080")
    settings = ClusterSettings("dup", str(config), None, None, "sg")
    with pytest.raises(ValueError, match="configured twice"):
        await ClusterRegistry.from_settings([settings, settings])


async def test_kubectl_reads_the_rendered_kubeconfig(
    cluster: ClusterClient, tmp_path: Path
) -> None:
    path = tmp_path / "issued.kubeconfig"
    path.write_text(yaml.safe_dump(render_kubeconfig(cluster, GRANT_ID, "payments", "tok")))
    result = await anyio.run_process(
        ["kubectl", "--kubeconfig", str(path), "config", "view", "--minify", "--raw", "-o", "json"]
    )
    view = json.loads(result.stdout)
    assert view["current-context"] == f"scangate-{GRANT_ID}"
    assert view["contexts"][0]["context"]["namespace"] == "payments"
    assert view["users"][0]["user"]["token"] == "tok"


async def test_in_cluster_config_uses_the_mounted_ca_and_the_configured_public_server(
    tmp_path: Path, ca_pem: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("in-cluster-token")
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    settings = ClusterSettings("incluster", None, None, "https://k8s.example.com", "sg")
    client = await ClusterClient.connect(settings)
    try:
        entry = render_kubeconfig(client, GRANT_ID, "payments", "t")["clusters"][0]["cluster"]
    finally:
        await client.aclose()
    assert entry["server"] == "https://k8s.example.com"
    assert base64.b64decode(entry["certificate-authority-data"]) == ca_pem

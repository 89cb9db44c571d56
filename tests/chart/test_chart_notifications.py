"""Notification targets deployed by the chart (`config.notifications`): their signing secrets and
secret webhook URLs stay in the operator's Secrets, reach the pod as files of one projected
volume, and the rendered scangate.yaml names those files; the NetworkPolicy lets deliveries out.

The Secrets are created in kubesim and the files are laid out from them exactly as the
Deployment's projected volume says, so scangate's own settings loader reads what the pod would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from app.auth import generate_api_key
from app.db.engine import run_migrations
from app.notifications.targets import NotificationTargets
from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.chart.chart_checks import deployment, rendered_config, secret_value
from tests.chart.helm_runner import Release
from tests.notifications.receiver import Receiver
from tests.support.chart import InstallScangateChart
from tests.support.polling import eventually
from tests.support.scangate import Deployment, scangate_config

SIGNING_SECRET = "hmac-8c1f0b7e4d2a-never-in-the-configmap"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/SLACKPATHSECRET"
HOOKS_SECRET = "scangate-hooks"

SIEM = {
    "name": "siem",
    "url": "https://siem.example.com/scangate",
    "secretRef": {"name": HOOKS_SECRET, "key": "siem-hmac"},
    "events": ["requested", "approval_needed", "denied", "guard_refused"],
    "timeout_seconds": 5,
}
CHAT = {
    "name": "team-chat",
    "urlSecretRef": {"name": HOOKS_SECRET, "key": "slack-url"},
    "format": "slack",
    "events": ["approval_needed", "failed"],
}
TARGETS = {"config": {"notifications": [SIEM, CHAT]}}


def create_hooks_secret(cluster: KubesimHandle, namespace: str) -> None:
    core = k8s.CoreV1Api(cluster.admin_client())
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name=HOOKS_SECRET),
            string_data={"siem-hmac": SIGNING_SECRET, "slack-url": SLACK_URL},
        ),
    )


def pod_spec(release: Release) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(release)["spec"]["template"]["spec"]
    return spec


def lay_out_notifications_volume(
    release: Release, cluster: KubesimHandle, namespace: str, root: Path
) -> str:
    """Write the projected volume's files under `root` from the Secrets in the cluster, as the
    kubelet would; returns the volume's mount path in the pod."""
    (volume,) = [v for v in pod_spec(release)["volumes"] if v["name"] == "notifications"]
    core = k8s.CoreV1Api(cluster.admin_client())
    for source in volume["projected"]["sources"]:
        secret = core.read_namespaced_secret(source["secret"]["name"], namespace)
        for item in source["secret"]["items"]:
            path = root / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(secret.data[item["key"]]))
    (mount,) = [
        m
        for m in pod_spec(release)["containers"][0]["volumeMounts"]
        if m["name"] == "notifications"
    ]
    mount_path: str = mount["mountPath"]
    return mount_path


def test_targets_render_with_secret_files_and_no_secret_in_the_configmap(
    install_scangate_chart: InstallScangateChart,
    kubesim: KubesimHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = install_scangate_chart(TARGETS)
    release = installed.release
    create_hooks_secret(kubesim, installed.namespace)

    config_text = release.get("ConfigMap", "scangate-config")["data"]["scangate.yaml"]
    manifests = release.manifest + json.dumps(release.objects)
    for credential in (SIGNING_SECRET, SLACK_URL, "SLACKPATHSECRET"):
        assert credential not in manifests
    assert rendered_config(release)["notifications"] == [
        {
            "name": "siem",
            "url": "https://siem.example.com/scangate",
            "secret_file": "/etc/scangate-notifications/siem/secret",
            "events": ["requested", "approval_needed", "denied", "guard_refused"],
            "timeout_seconds": 5,
        },
        {
            "name": "team-chat",
            "url_file": "/etc/scangate-notifications/team-chat/url",
            "format": "slack",
            "events": ["approval_needed", "failed"],
        },
    ]

    spec = pod_spec(release)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "notifications"]
    assert volume["projected"]["sources"] == [
        {"secret": {"name": HOOKS_SECRET, "items": [{"key": "siem-hmac", "path": "siem/secret"}]}},
        {
            "secret": {
                "name": HOOKS_SECRET,
                "items": [{"key": "slack-url", "path": "team-chat/url"}],
            }
        },
    ]
    # The migrations init container loads the same settings, so it needs the files too.
    for container in [*spec["initContainers"], *spec["containers"]]:
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["notifications"] == {
            "name": "notifications",
            "mountPath": "/etc/scangate-notifications",
            "readOnly": True,
        }, container["name"]
        assert not any("NOTIFY" in e["name"] for e in container["env"])

    # scangate's own loader accepts the rendered file with the volume's files in place.
    mount_path = lay_out_notifications_volume(release, kubesim, installed.namespace, tmp_path)
    config_file = tmp_path / "scangate.yaml"
    config_file.write_text(config_text.replace(mount_path, str(tmp_path)))
    monkeypatch.setenv(
        "SCANGATE_API_KEYS", secret_value(release, "scangate-api-keys", "api-keys.json")
    )
    monkeypatch.setenv("SCANGATE_DATABASE_URL", "postgresql+psycopg://scangate@db/scangate")
    settings = load_settings(config_file)
    targets = NotificationTargets.from_settings(settings.notifications)
    assert targets.names == ("siem", "team-chat")
    siem, chat = targets.get("siem"), targets.get("team-chat")
    assert siem is not None
    assert chat is not None
    assert siem.secret == SIGNING_SECRET.encode()
    assert siem.events == frozenset(SIEM["events"])
    assert chat.url == SLACK_URL
    assert chat.secret is None
    assert chat.format == "slack"


def test_no_notifications_volume_or_config_without_targets(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart().release
    assert "notifications" not in rendered_config(release)
    spec = pod_spec(release)
    assert "notifications" not in {v["name"] for v in spec["volumes"]}


RECEIVERS = {"cidrs": ["203.0.113.0/24"], "ports": [443, 8443]}


def notification_rules(release: Release) -> list[dict[str, Any]]:
    egress: list[dict[str, Any]] = release.get("NetworkPolicy", "scangate")["spec"]["egress"]
    return [
        rule
        for rule in egress
        if {"ipBlock": {"cidr": "203.0.113.0/24"}} in rule.get("to", [])
        or {"port": 8443, "protocol": "TCP"} in rule["ports"]
    ]


@pytest.mark.parametrize("with_targets", [True, False])
def test_network_policy_lets_deliveries_out_only_with_targets(
    install_scangate_chart: InstallScangateChart, with_targets: bool
) -> None:
    values: dict[str, Any] = {"networkPolicy": {"egress": {"notifications": RECEIVERS}}}
    if with_targets:
        values["config"] = {"notifications": [SIEM]}
    rules = notification_rules(install_scangate_chart(values).release)
    if with_targets:
        assert rules == [
            {
                "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}],
                "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
            }
        ]
    else:
        assert rules == []


def test_default_receiver_rule_allows_https_anywhere(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart({"config": {"notifications": [CHAT]}}).release
    egress = release.get("NetworkPolicy", "scangate")["spec"]["egress"]
    assert egress[-1] == {"ports": [{"port": 443, "protocol": "TCP"}]}
    assert yaml.safe_load(release.get("ConfigMap", "scangate-config")["data"]["scangate.yaml"])[
        "notifications"
    ][0]["url_file"].endswith("/team-chat/url")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A signature-checking receiver (the SIEM) and an unsigned one (the Slack stand-in)."""
    siem, chat = Receiver(secret=SIGNING_SECRET.encode()), Receiver()
    siem.start()
    chat.start()
    yield siem, chat
    siem.stop()
    chat.stop()


@pytest.mark.anyio
async def test_scangate_delivers_to_the_charts_targets_with_the_secrets_from_the_secret(
    install_scangate_chart: InstallScangateChart,
    kubesim_tls: KubesimHandle,
    sqlite_url: str,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
) -> None:
    siem_receiver, chat_receiver = receivers
    # Receivers on loopback stand in for the SIEM and Slack; the Slack URL is in the Secret.
    siem = {**SIEM, "url": siem_receiver.url, "retry_max_seconds": 1}
    installed = install_scangate_chart(
        {"config": {"notifications": [siem, {**CHAT, "events": ["requested"]}]}},
        cluster=kubesim_tls,
    )
    k8s.CoreV1Api(kubesim_tls.admin_client()).create_namespaced_secret(
        installed.namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name=HOOKS_SECRET),
            string_data={"siem-hmac": SIGNING_SECRET, "slack-url": chat_receiver.url},
        ),
    )
    mount_path = lay_out_notifications_volume(
        installed.release, kubesim_tls, installed.namespace, tmp_path / "volume"
    )
    rendered = yaml.safe_load(
        installed.release.get("ConfigMap", "scangate-config")["data"]["scangate.yaml"].replace(
            mount_path, str(tmp_path / "volume")
        )
    )
    run_migrations(sqlite_url)
    api_keys = {name: generate_api_key()[0] for name in ("alice", "bob", "carol", "root")}
    document = scangate_config(
        kubeconfig=str(installed.kubeconfig), database_url=sqlite_url, api_keys=api_keys
    )
    document["clusters"] = [installed.cluster_config()]
    document["notifications"] = rendered["notifications"]
    deployment = Deployment(tmp_path, api_keys, document)

    async with deployment.running() as scangate:
        grant = await scangate.grant()
        assert await eventually(lambda: len(chat_receiver.received) == 1, within=10)
        assert await eventually(lambda: len(siem_receiver.received) == 1, within=10)

    (signed,) = siem_receiver.received
    assert signed.signature_ok  # signed with the secret the kubelet would have mounted
    assert signed.document["type"] == "dev.scangate.grant.requested"
    assert signed.document["subject"] == grant["id"]
    assert "blocks" in chat_receiver.received[0].document  # a Slack message

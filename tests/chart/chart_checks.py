"""Assertions shared by the chart tests: what every rendered scangate pod and object must be."""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from tests.chart.helm_runner import Release

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def assert_standard_labels(release: Release) -> None:
    for obj in release.objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']} {obj['metadata']['name']}"
        for label in STANDARD_LABELS:
            assert label in labels, f"{where} lacks {label}"
        assert labels["app.kubernetes.io/instance"] == release.name
        # scangate's reaper deletes objects labelled managed-by=scangate that belong to no
        # live grant: the chart's own objects must never look like grant objects.
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert "scangate.dev/grant" not in labels, where


def deployment(release: Release) -> dict[str, Any]:
    deployments = release.of_kind("Deployment")
    assert len(deployments) == 1
    return deployments[0]


def containers(release: Release) -> list[dict[str, Any]]:
    spec = deployment(release)["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def assert_hardened_pod(release: Release) -> None:
    pod = deployment(release)["spec"]["template"]["spec"]
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is True  # scangate's in-cluster credentials
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    assert not pod.get("hostIPC")
    for container in containers(release):
        security = container["securityContext"]
        name = container["name"]
        assert security["runAsNonRoot"] is True, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security.get("privileged", False) is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert not security["capabilities"].get("add"), name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def assert_probes(release: Release) -> None:
    container = deployment(release)["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        # The grant guard's webhook listener (test_guard_chart.py).
        {"name": "guard", "containerPort": 8443, "protocol": "TCP"},
    ]


def rendered_config(release: Release) -> dict[str, Any]:
    (configmap,) = release.of_kind("ConfigMap")
    document: dict[str, Any] = yaml.safe_load(configmap["data"]["scangate.yaml"])
    return document


def secret_value(release: Release, name: str, key: str) -> str:
    secret = release.get("Secret", name)
    return base64.b64decode(secret["data"][key]).decode()


def rendered_api_keys(release: Release, secret: str) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = json.loads(secret_value(release, secret, "api-keys.json"))
    return keys

"""Helm (the real Helm 4 library, through helm-sdkpy) installs a chart into kubesim.

Helm is Go: like kubectl it sends no bearer token over plain HTTP, so it talks to the TLS
kubesim through the admin kubeconfig and its CA. Most tests use `HELM_DRIVER=memory` to keep
release records out of the cluster; Helm's default storage (release Secrets, sent as protobuf)
is tested on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle

pytest.importorskip("helm_sdkpy")

_TEMPLATES = {
    "configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  labels: {app.kubernetes.io/managed-by: {{ .Release.Service }}}
data:
  mode: {{ .Values.mode | quote }}
""",
    "serviceaccount.yaml": """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
""",
    "role.yaml": """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .Release.Name }}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .Release.Name }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ .Release.Name }}}
subjects:
  - {kind: ServiceAccount, name: {{ .Release.Name }}, namespace: {{ .Release.Namespace }}}
""",
    "deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: app
          image: nginx:1.27
          ports: [{containerPort: 8080}]
""",
    "service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: 8080}]
""",
}


def _write_chart(directory: Path) -> Path:
    chart = directory / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: '>=1.27.0-0'\n"
    )
    (chart / "values.yaml").write_text("mode: strict\nreplicas: 1\n")
    for name, text in _TEMPLATES.items():
        (chart / "templates" / name).write_text(text)
    return chart


def _helm_install(
    handle: KubesimHandle,
    chart: Path,
    values: dict[str, object],
    namespace: str = "payments",
    driver: str | None = "memory",
    **options: object,
) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "HELM_DRIVER"}
    if driver is not None:
        env["HELM_DRIVER"] = driver
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.kubesim.helm_install",
            str(handle.admin_kubeconfig),
            str(chart),
            namespace,
            "demo",
            json.dumps(values),
            json.dumps(options),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_helm_installs_a_chart(kubesim_tls: KubesimHandle, tmp_path: Path) -> None:
    chart = _write_chart(tmp_path)

    release = _helm_install(kubesim_tls, chart, {"replicas": 2})

    assert release["info"]["status"] == "deployed"
    with kubesim_tls.admin_client() as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        settings = core.read_namespaced_config_map("demo-settings", "payments")
        assert settings.data == {"mode": "strict"}
        assert settings.metadata.labels == {"app.kubernetes.io/managed-by": "Helm"}
        assert apps.read_namespaced_deployment("demo", "payments").spec.replicas == 2
        assert core.read_namespaced_service("demo", "payments").spec.ports[0].port == 80
        assert core.read_namespaced_service_account("demo", "payments").metadata.uid
        binding = rbac.read_namespaced_role_binding("demo", "payments")
        assert binding.role_ref.name == "demo"
    # Helm read each object before creating it, as kube-apiserver clients do.
    calls = [(r["method"], r["resource"]) for r in kubesim_tls.requests()]
    assert calls.index(("GET", "deployments")) < calls.index(("POST", "deployments"))


def test_helm_creates_the_namespace_and_a_persistent_volume_claim(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    # create_namespace=True with OpenAPI validation on: Helm checks every kind's
    # `fieldValidation` support in /openapi/v3 before creating anything (scangate's chart
    # needs this for its SQLite volume).
    chart = _write_chart(tmp_path)
    (chart / "templates" / "pvc.yaml").write_text(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: {{ .Release.Name }}-data}\n"
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
    )

    release = _helm_install(
        kubesim_tls,
        chart,
        {},
        namespace="fresh",
        create_namespace=True,
        disable_openapi_validation=False,
    )

    assert release["info"]["status"] == "deployed"
    with kubesim_tls.admin_client() as api:
        core = client.CoreV1Api(api)
        assert core.read_namespace("fresh").status.phase == "Active"
        claim = core.read_namespaced_persistent_volume_claim("demo-data", "fresh")
    assert claim.spec.resources.requests == {"storage": "1Gi"}
    assert claim.status.phase == "Pending"  # no provisioner binds it
    paths = {r["path"] for r in kubesim_tls.requests()}
    assert {"/openapi/v3", "/openapi/v3/api/v1"} <= paths


def test_helm_default_storage_keeps_the_release_in_a_secret(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    # Helm's default driver stores each release as a Secret, created and then updated through
    # client-go's typed client in protobuf; a real cluster reads it, and so must kubesim.
    chart = _write_chart(tmp_path)

    release = _helm_install(kubesim_tls, chart, {"replicas": 1}, driver=None)

    assert release["info"]["status"] == "deployed"
    with kubesim_tls.admin_client() as api:
        secret = client.CoreV1Api(api).read_namespaced_secret(
            "sh.helm.release.v1.demo.v1", "payments"
        )
    assert secret.type == "helm.sh/release.v1"
    assert secret.metadata.labels["owner"] == "helm"
    assert secret.metadata.labels["status"] == "deployed"  # written by the update after install
    assert secret.data["release"]
    writes = [
        (r["method"], r["content_type"])
        for r in kubesim_tls.requests()
        if r["resource"] == "secrets" and r["method"] in ("POST", "PUT")
    ]
    assert writes == [
        ("POST", "application/vnd.kubernetes.protobuf"),
        ("PUT", "application/vnd.kubernetes.protobuf"),
    ]


def test_helm_uninstall_with_default_storage_purges_the_release(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    # Uninstall deletes the release Secret through the typed client: a DELETE whose
    # DeleteOptions body is protobuf.
    _helm_install(kubesim_tls, _write_chart(tmp_path), {"replicas": 1}, driver=None)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.kubesim.helm_install",
            "--uninstall",
            str(kubesim_tls.admin_kubeconfig),
            "payments",
            "demo",
        ],
        env={k: v for k, v in os.environ.items() if k != "HELM_DRIVER"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    with kubesim_tls.admin_client() as api:
        secrets = client.CoreV1Api(api).list_namespaced_secret(
            "payments", label_selector="owner=helm"
        )
        config_maps = client.CoreV1Api(api).list_namespaced_config_map("payments")
    assert secrets.items == []
    assert "demo-settings" not in {c.metadata.name for c in config_maps.items}
    deletes = [
        r["content_type"]
        for r in kubesim_tls.requests()
        if r["method"] == "DELETE" and r["resource"] == "secrets"
    ]
    assert deletes == ["application/vnd.kubernetes.protobuf"]

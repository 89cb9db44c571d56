"""core/v1 persistentvolumeclaims: namespaced CRUD, the apiserver's validation, and a claim
that stays Pending (no provisioner runs in kubesim)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import kubectl, status_of


def _claim(name: str = "data", **spec: Any) -> dict[str, Any]:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": body}  # fmt: skip


def test_a_claim_is_created_listed_and_deleted(admin_core: client.CoreV1Api) -> None:
    created = admin_core.create_namespaced_persistent_volume_claim("payments", _claim())

    assert created.status.phase == "Pending"
    assert created.spec.volume_mode == "Filesystem"
    listed = admin_core.list_namespaced_persistent_volume_claim("payments")
    assert [c.metadata.name for c in listed.items] == ["data"]
    assert admin_core.list_namespaced_persistent_volume_claim("orders").items == []
    admin_core.delete_namespaced_persistent_volume_claim("data", "payments")
    with pytest.raises(ApiException) as missing:
        admin_core.read_namespaced_persistent_volume_claim("data", "payments")
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'persistentvolumeclaims "data" not found'


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        (
            {"accessModes": []},
            "spec.accessModes: Required value: at least 1 access mode is required",
        ),
        (
            {"accessModes": ["ReadWriteSometimes"]},
            'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
            '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        ),
        ({"resources": {}}, "spec.resources[storage]: Required value"),
    ],
)
def test_an_invalid_claim_is_rejected(
    admin_core: client.CoreV1Api, spec: dict[str, Any], cause: str
) -> None:
    with pytest.raises(ApiException) as invalid:
        admin_core.create_namespaced_persistent_volume_claim("payments", _claim(**spec))

    assert invalid.value.status == 422
    assert status_of(invalid.value)["message"] == (
        f'PersistentVolumeClaim "data" is invalid: {cause}'
    )


def test_kubectl_applies_and_lists_claims(kubesim_tls: KubesimHandle, tmp_path: Path) -> None:
    manifest = tmp_path / "pvc.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: payments}\n"
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
    )

    applied = kubectl(kubesim_tls.admin_kubeconfig, "apply", "-f", str(manifest))
    listed = kubectl(kubesim_tls.admin_kubeconfig, "get", "pvc", "-n", "payments", "-o", "name")

    assert applied.stdout.strip() == "persistentvolumeclaim/data created", applied.stderr
    assert listed.stdout.strip() == "persistentvolumeclaim/data"

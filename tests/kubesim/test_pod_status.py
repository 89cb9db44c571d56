"""Pod status as kube-apiserver keeps it (pkg/registry/core/pod/strategy.go, the Go round trip).

A pod created through the API starts Pending with its QoS class whatever status it was sent
with; status comes from the kubelet through pods/status (kubesim's seeding plays that part).
Every stored container status carries `name`, `ready`, `restartCount`, `image` and `imageID`,
which the official client requires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubesim.pod_status import qos_class
from kubesim.pytest_plugin import KubesimHandle


def _pod(name: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "payments"},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    if status is not None:
        pod["status"] = status
    return pod


_BARE_STATUS = {
    "phase": "Running",
    # What a hand-written seed tends to say: no image, imageID or restartCount.
    "containerStatuses": [{"name": "app", "ready": True}],
}


_FULL_STATUS = {
    "phase": "Running",
    "containerStatuses": [
        {"name": "app", "ready": True, "restartCount": 0, "image": "app:1", "imageID": "sha"}
    ],
}


def test_status_sent_on_create_is_replaced_by_pending(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        core = client.CoreV1Api(api)
        created = core.create_namespaced_pod("payments", _pod("fresh", _FULL_STATUS))
        stored = core.read_namespaced_pod("fresh", "payments")

    assert created.status.phase == "Pending"
    assert stored.status.phase == "Pending"
    assert stored.status.qos_class == "BestEffort"
    assert stored.status.container_statuses is None


def test_seeded_container_status_is_completed_so_the_client_can_read_it(
    kubesim: KubesimHandle,
) -> None:
    kubesim.apply(_pod("seeded", _BARE_STATUS))

    with kubesim.admin_client() as api:
        pod = client.CoreV1Api(api).read_namespaced_pod("seeded", "payments")
        listed = client.CoreV1Api(api).list_namespaced_pod("payments")

    assert pod.status.phase == "Running"
    [status] = pod.status.container_statuses
    assert (status.name, status.ready, status.restart_count, status.image, status.image_id) == (
        "app",
        True,
        0,
        "",
        "",
    )
    assert "seeded" in {p.metadata.name for p in listed.items}


def test_kubelet_style_status_update_is_completed(
    kubesim: KubesimHandle, admin_http: httpx.Client
) -> None:
    # Sent as raw JSON: the official client refuses to build such a status itself.
    created = admin_http.post("/api/v1/namespaces/payments/pods", json=_pod("updated")).json()
    created["status"] = {"phase": "Running", "containerStatuses": [{"name": "app"}]}
    response = admin_http.put("/api/v1/namespaces/payments/pods/updated/status", json=created)

    with kubesim.admin_client() as api:
        pod = client.CoreV1Api(api).read_namespaced_pod("updated", "payments")

    assert response.status_code == 200, response.text
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].restart_count == 0
    assert pod.status.container_statuses[0].ready is False
    assert pod.status.qos_class == "BestEffort"


def test_seed_cli_pods_keep_their_status(kubesim_factory: Callable[..., KubesimHandle]) -> None:
    seed = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: payments}\n"
        "spec: {containers: [{name: c, image: busybox}]}\n"
        "status: {phase: Running, containerStatuses: [{name: c, ready: true}]}\n"
    )
    handle: KubesimHandle = kubesim_factory(seed=seed)

    with handle.admin_client() as api:
        pod = client.CoreV1Api(api).read_namespaced_pod("p", "payments")

    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].image == ""


def _containers(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}


_CPU_MEM = {"cpu": "100m", "memory": "64Mi"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (_containers({}), "BestEffort"),
        (_containers({"requests": {"ephemeral-storage": "1Gi"}}), "BestEffort"),
        (_containers({"limits": _CPU_MEM}), "Guaranteed"),
        (_containers({"limits": _CPU_MEM, "requests": _CPU_MEM}), "Guaranteed"),
        (
            _containers({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m"}}),
            "Guaranteed",
        ),
        (_containers({"limits": _CPU_MEM}, {}), "Burstable"),
        (_containers({"requests": _CPU_MEM}), "Burstable"),
        (_containers({"limits": {"cpu": "1"}}), "Burstable"),
        (_containers({"limits": _CPU_MEM, "requests": {"cpu": "50m"}}), "Burstable"),
    ],
)
def test_qos_class(spec: dict[str, Any], expected: str) -> None:
    assert qos_class(spec) == expected

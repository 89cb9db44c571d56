"""The simulated cluster seen from outside, as its admin or with an issued token: which
scangate objects exist, what a token may still do, and objects planted as a crashed scangate
would have left them."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import kubernetes.client as k8s
import yaml

from kubesim.pytest_plugin import KubesimHandle
from tests.support.scangate import GRANTS_NAMESPACE


def cluster_objects(sim: KubesimHandle, grant_id: str | None = None) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of scangate-labelled objects in the cluster, read as its admin."""
    selector = (
        f"scangate.dev/grant={grant_id}" if grant_id else "app.kubernetes.io/managed-by=scangate"
    )
    api = sim.admin_client()
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    listed: list[tuple[str, list[Any]]] = [
        (
            "ServiceAccount",
            core.list_service_account_for_all_namespaces(label_selector=selector).items,
        ),
        ("Role", rbac.list_role_for_all_namespaces(label_selector=selector).items),
        ("RoleBinding", rbac.list_role_binding_for_all_namespaces(label_selector=selector).items),
    ]
    found: set[tuple[str, str, str]] = set()
    for kind, items in listed:
        found |= {(kind, item.metadata.namespace, item.metadata.name) for item in items}
    return found


def expected_objects(grant_id: str, namespace: str = "payments") -> set[tuple[str, str, str]]:
    """What `cluster_objects` finds for a provisioned grant on `namespace`."""
    name = f"scangate-{grant_id}"
    return {
        ("ServiceAccount", GRANTS_NAMESPACE, name),
        ("Role", namespace, name),
        ("RoleBinding", namespace, name),
    }


def token_of(kubeconfig_text: str) -> str:
    """The bearer token of an issued kubeconfig."""
    document = yaml.safe_load(kubeconfig_text)
    token: str = document["users"][0]["user"]["token"]
    return token


def token_status(
    sim: KubesimHandle, token: str, path: str = "/api/v1/namespaces/payments/pods/web-0"
) -> int:
    """The HTTP status the cluster answers a request authenticated with `token`."""
    verify: ssl.SSLContext | bool = False
    if sim.ca_cert_pem:
        verify = ssl.create_default_context(cadata=sim.ca_cert_pem.decode())
    response = httpx.get(
        sim.url + path, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=10
    )
    return response.status_code


def plant_objects(sim: KubesimHandle, grant_id: str, namespace: str = "payments") -> None:
    """The objects a scangate process would have created for `grant_id` before dying."""
    name = f"scangate-{grant_id}"
    labels = {
        "app.kubernetes.io/managed-by": "scangate",
        "scangate.dev/grant": grant_id,
        # The test installation's id: the default, its grants namespace.
        "scangate.dev/installation": GRANTS_NAMESPACE,
    }
    annotations = {"scangate.dev/target-namespace": namespace}
    sim.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": GRANTS_NAMESPACE, "labels": labels,
                             "annotations": annotations},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"],
                           "resourceNames": ["web-0"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name,
                              "namespace": GRANTS_NAMESPACE}],
            },
        ]
    )  # fmt: skip

"""The opt-in end-to-end suite: the grant flow against a real cluster (kind, minikube, ...).

Run it with `SCANGATE_E2E_KUBECONFIG=/path/admin.kubeconfig pytest -m e2e`. The kubeconfig must
be able to create namespaces, pods, ServiceAccounts and RBAC objects (a kind admin kubeconfig
is). The suite creates a target namespace with two busybox pods and a grants namespace, both
with random names, runs scangate in-process against the cluster (SQLite), and deletes both
namespaces afterwards.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from app.auth import generate_api_key
from app.db.engine import run_migrations
from tests.support.e2e import E2ECluster
from tests.support.scangate import Deployment, scangate_config

E2E_KUBECONFIG = os.environ.get("SCANGATE_E2E_KUBECONFIG", "")
POD_IMAGE = os.environ.get("SCANGATE_E2E_IMAGE", "busybox:1.36")
POD_NAMES = ("web-0", "web-1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if not E2E_KUBECONFIG:
                item.add_marker(pytest.mark.skip(reason="SCANGATE_E2E_KUBECONFIG is not set"))


def _pod(name: str, namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "e2e-web"}},
        "spec": {
            "containers": [
                {"name": "app", "image": POD_IMAGE, "command": ["sleep", "3600"]},
                {"name": "scanner", "image": POD_IMAGE, "command": ["sleep", "3600"]},
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }


def _wait_running(core: k8s.CoreV1Api, namespace: str, names: tuple[str, ...]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        phases = {core.read_namespaced_pod(n, namespace).status.phase for n in names}
        if phases == {"Running"}:
            return
        time.sleep(2)
    pytest.fail(f"pods {names} in {namespace} did not become Running within 180 s")


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[E2ECluster]:
    suffix = secrets.token_hex(3)
    api = k8s_config.new_client_from_config(config_file=E2E_KUBECONFIG)
    core = k8s.CoreV1Api(api)
    cluster = E2ECluster(
        kubeconfig=Path(E2E_KUBECONFIG),
        api=api,
        namespace=f"scangate-e2e-{suffix}",
        grants_namespace=f"scangate-e2e-grants-{suffix}",
    )
    for namespace in (cluster.namespace, cluster.grants_namespace):
        core.create_namespace({"metadata": {"name": namespace}})
    try:
        for name in POD_NAMES:
            core.create_namespaced_pod(cluster.namespace, _pod(name, cluster.namespace))
        _wait_running(core, cluster.namespace, POD_NAMES)
        yield cluster
    finally:
        for namespace in (cluster.namespace, cluster.grants_namespace):
            core.delete_namespace(namespace)
        api.close()


@pytest.fixture
def e2e_deployment(e2e_cluster: E2ECluster, tmp_path: Path) -> Deployment:
    url = f"sqlite:///{tmp_path / 'scangate.db'}"
    run_migrations(url)
    api_keys = {name: generate_api_key()[0] for name in ("alice", "bob", "carol", "root")}
    document = scangate_config(
        kubeconfig=str(e2e_cluster.kubeconfig), database_url=url, api_keys=api_keys
    )
    document["clusters"][0]["grants_namespace"] = e2e_cluster.grants_namespace
    document["policies"][0]["namespaces"] = [e2e_cluster.namespace]
    (tmp_path / "scangate.yaml").write_text(yaml.safe_dump(document))
    return Deployment(tmp_path, api_keys, document)

"""The floor: the Kubernetes calls a grant cannot do without, made directly with the official
`kubernetes` client, with nothing of scangate in between (no HTTP API, authentication, policy,
database, retries or audit).

One grant is what the critical path (docs/ARCHITECTURE.md) allows at best: the pod lookup with the
ServiceAccount created alongside, then the Role (it names the pods found), then the RoleBinding
(the API server looks the Role up when the creator lacks `bind`, so the Role must exist). The
kubeconfig is one TokenRequest; a revocation deletes the ServiceAccount, RoleBinding and Role
in the order scangate uses. The objects are the ones scangate creates (same manifests), except
that their managed-by label says `bench-floor`, so scangate's orphan sweep leaves them alone.

The floor uses the client as its documentation does: synchronous calls, each holding a
thread for its round trip (the ServiceAccount in a second thread beside the pod lookup). The
request bodies are the ones scangate sends, and the answers to creates and deletes are read but
not decoded into the client's models (scangate does not decode them either). scangate sends the
same requests from its event loop instead, through the official client's asyncio variant
(`kubernetes.aio`, via `app/kube/api_calls.py`). So the floor is the cluster
plus the stock way of calling it, and the ratios say what scangate costs against that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from kubernetes import client, config
from kubernetes.aio.client import ApiClient

from app.grants.ids import new_grant_id
from app.kube.api_calls import ApiRequest, RetryPolicy, Send, open_api_client, sender
from app.kube.client_config import ClusterSettings, load_cluster_config
from app.kube.manifests import (
    API_RESOURCES,
    role_binding_manifest,
    role_manifest,
    service_account_manifest,
)
from app.kube.models import GrantTarget, ManagedKind
from app.kube.naming import MANAGED_BY_LABEL, object_name
from app.kube.operations import Operation
from app.kube.profiles import profile_rules
from bench.cluster import GRANTS_NAMESPACE, TARGET_NAMESPACE, TARGET_POD, SimulatedCluster

FLOOR_MANAGED_BY: Final = "bench-floor"
_TOKEN_SECONDS: Final = 3600


@dataclass(frozen=True)
class FloorGrant:
    grant_id: str

    @property
    def name(self) -> str:
        return object_name(self.grant_id)


def _target(grant_id: str) -> GrantTarget:
    return GrantTarget(
        grant_id=grant_id,
        namespace=TARGET_NAMESPACE,
        scanner="exec",
        requester="apikey:bench",
        expires_at=datetime.now(UTC) + timedelta(seconds=_TOKEN_SECONDS),
    )


def _floor_labelled(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest["metadata"]["labels"][MANAGED_BY_LABEL] = FLOOR_MANAGED_BY
    return manifest


def _discarding(call: Callable[..., Any], *args: Any) -> None:
    """A call whose answer is not needed: its body is read and dropped, not decoded into
    models (scangate does not decode these answers either)."""
    response = call(*args, _preload_content=False)
    response.drain_conn()
    response.release_conn()


class Floor:
    """The minimal calls, in threads. `concurrency` is the most grants in flight at once."""

    def __init__(self, cluster: SimulatedCluster, concurrency: int) -> None:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(Path(cluster.admin_kubeconfig)),
            client_configuration=configuration,
            persist_config=False,
        )
        # Two calls per grant can be in flight (the ServiceAccount beside the pod lookup):
        # a connection for each, so no call waits for one.
        configuration.connection_pool_maxsize = 2 * concurrency
        configuration.retries = False
        self._api = client.ApiClient(configuration=configuration)
        self._core = client.CoreV1Api(self._api)
        self._rbac = client.RbacAuthorizationV1Api(self._api)
        self._side = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="floor-sa")

    def close(self) -> None:
        self._side.shutdown(wait=True)
        self._api.close()  # type: ignore[no-untyped-call]

    def grant(self, _: object = None) -> FloorGrant:
        grant_id = new_grant_id()
        target = _target(grant_id)
        account = _floor_labelled(
            service_account_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE)
        )
        created = self._side.submit(
            _discarding, self._core.create_namespaced_service_account, GRANTS_NAMESPACE, account
        )
        self._core.read_namespaced_pod(TARGET_POD, TARGET_NAMESPACE)  # it exists
        rules = profile_rules("exec", [TARGET_POD])
        role = _floor_labelled(role_manifest(target, rules, GRANTS_NAMESPACE))
        _discarding(self._rbac.create_namespaced_role, TARGET_NAMESPACE, role)
        created.result()
        binding = _floor_labelled(role_binding_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE))
        _discarding(self._rbac.create_namespaced_role_binding, TARGET_NAMESPACE, binding)
        return FloorGrant(grant_id)

    def kubeconfig(self, grant: FloorGrant) -> None:
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(expiration_seconds=_TOKEN_SECONDS)
        )
        response = self._core.create_namespaced_service_account_token(
            grant.name, GRANTS_NAMESPACE, body
        )
        if response.status is None or not response.status.token:
            raise RuntimeError("TokenRequest returned no token")

    def revoke(self, grant: FloorGrant) -> None:
        _discarding(self._core.delete_namespaced_service_account, grant.name, GRANTS_NAMESPACE)
        _discarding(self._rbac.delete_namespaced_role_binding, grant.name, TARGET_NAMESPACE)
        _discarding(self._rbac.delete_namespaced_role, grant.name, TARGET_NAMESPACE)


class EventLoopFloor:
    """The floor's grant calls sent as scangate sends them: from an event loop through
    `app/kube/api_calls.py` (`kubernetes.aio`; no retries, API, database or audit). A
    reference, not the issue's floor: it says how much of scangate's cost is the client layer
    both share. Built with `await EventLoopFloor.open(cluster)` in the loop that uses it."""

    def __init__(self, api_client: ApiClient) -> None:
        self._api_client = api_client
        self._send: Send = sender(api_client)
        self._timeouts = RetryPolicy().request_timeout

    @classmethod
    async def open(cls, cluster: SimulatedCluster) -> EventLoopFloor:
        settings = ClusterSettings("bench", str(cluster.admin_kubeconfig), None, None, "")
        config = await load_cluster_config(settings)
        return cls(open_api_client(config, max_connections=64))

    async def aclose(self) -> None:
        await self._api_client.close()  # type: ignore[no-untyped-call]

    async def _create(self, kind: ManagedKind, namespace: str, body: dict[str, Any]) -> None:
        group, resource = API_RESOURCES[kind]
        operation = Operation("create", resource, group, namespace)
        await self._send(ApiRequest(operation, body=_floor_labelled(body)), self._timeouts)

    async def grant(self, _: object = None) -> FloorGrant:
        grant_id = new_grant_id()
        target = _target(grant_id)
        account = service_account_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE)
        created = asyncio.create_task(self._create("ServiceAccount", GRANTS_NAMESPACE, account))
        pod = Operation("get", "pods", namespace=TARGET_NAMESPACE, name=TARGET_POD)
        await self._send(ApiRequest(pod, returns="V1Pod"), self._timeouts)
        role = role_manifest(target, profile_rules("exec", [TARGET_POD]), GRANTS_NAMESPACE)
        await self._create("Role", TARGET_NAMESPACE, role)
        await created
        binding = role_binding_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE)
        await self._create("RoleBinding", TARGET_NAMESPACE, binding)
        return FloorGrant(grant_id)

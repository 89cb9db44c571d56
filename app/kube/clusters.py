"""One client per configured cluster (`ClusterClient`) and the registry of them.

Objects of a grant, in the order the Kubernetes rules impose:
- the ServiceAccount (grants namespace) may be created at any time;
- the Role must exist before the RoleBinding: without `bind` on the Role, the API server looks
  the Role up to check that scangate holds every permission it binds (escalation prevention).
  Granting scangate `bind` instead would let it bind any Role, so it is deliberately not held.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from app.kube.api_calls import (
    ApiRequest,
    CallObserver,
    ClusterApi,
    RetryPolicy,
    open_api_client,
    sender,
)
from app.kube.client_config import ClusterConfig, ClusterSettings, load_cluster_config
from app.kube.errors import KubeError, KubeNotFound
from app.kube.exposure import pod_exposure
from app.kube.inventory import ManagedObjectInventory
from app.kube.manifests import (
    RBAC_GROUP,
    role_binding_manifest,
    role_manifest,
    service_account_manifest,
)
from app.kube.models import GrantTarget, IssuedToken, ManagedObject, PodInfo
from app.kube.naming import INSTALLATION_LABEL, MANAGED_SELECTOR, object_name
from app.kube.operations import Operation
from app.kube.owned_deletes import DeleteOutcome, OwnedObjectDeleter, ownership_problem

__all__ = ["CallObserver", "ClusterClient", "ClusterRegistry", "ClusterSettings", "RetryPolicy"]

log = logging.getLogger(__name__)

# The API server rejects TokenRequest.expirationSeconds below 10 minutes.
MIN_TOKEN_SECONDS: Final = 600


class ClusterClient:
    """Talks to one cluster with its own ApiClient, connection pool and retry policy.

    Built with `await ClusterClient.connect(settings)` inside the event loop that will use it
    (the client's connection pool belongs to that loop); closed with `aclose()`.
    """

    def __init__(
        self,
        settings: ClusterSettings,
        config: ClusterConfig,
        *,
        max_concurrency: int = 64,
        retry: RetryPolicy | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.name = settings.name
        self.server = config.server
        self.certificate_authority_data = config.certificate_authority_data
        self.grants_namespace = settings.grants_namespace
        self.installation_id = settings.installation_id or settings.grants_namespace
        # At most `max_concurrency` requests in flight to this cluster (one connection each).
        self._api_client = open_api_client(config, max_connections=max_concurrency)
        self._api = ClusterApi(
            settings.name, sender(self._api_client), retry or RetryPolicy(), observer
        )
        self._inventory = ManagedObjectInventory(self._api, self.grants_namespace)
        self._deleter = OwnedObjectDeleter(self._api, self.installation_id)

    @classmethod
    async def connect(
        cls,
        settings: ClusterSettings,
        *,
        max_concurrency: int = 64,
        retry: RetryPolicy | None = None,
        observer: CallObserver | None = None,
    ) -> ClusterClient:
        """Load the cluster's credentials (KubeError naming the cluster if they cannot be) and
        build its client. Sends no request."""
        config = await load_cluster_config(settings)
        return cls(
            settings, config, max_concurrency=max_concurrency, retry=retry, observer=observer
        )

    async def ping(self) -> None:
        """Check that the cluster answers and accepts scangate's credentials.

        One try only: a readiness probe should report the state now, and it retries itself.
        """
        await self._api.call(
            ApiRequest(
                Operation("list", "serviceaccounts", namespace=self.grants_namespace),
                query=(("labelSelector", MANAGED_SELECTOR), ("limit", 1)),
            ),
            tries=1,
        )

    async def namespace_exists(self, namespace: str) -> bool:
        try:
            await self._api.call(ApiRequest(Operation("get", "namespaces", name=namespace)))
        except KubeNotFound:
            return False
        return True

    async def get_pods(self, namespace: str, names: Sequence[str]) -> list[PodInfo]:
        """The named pods that exist, in the order asked for (missing names are absent).

        One GET per name rather than a namespace-wide list: it needs only `get pods`, and
        grants name a handful of pods in namespaces that may hold thousands.
        """

        async def read(name: str) -> PodInfo | None:
            try:
                pod = await self._api.call(
                    ApiRequest(
                        Operation("get", "pods", namespace=namespace, name=name), returns="V1Pod"
                    )
                )
            except KubeNotFound:
                return None
            return _pod_info(pod)

        unique = list(dict.fromkeys(names))
        if len(unique) == 1:
            # The common case, without a task per name: the GET leaves now, before whatever
            # the caller runs alongside (the grant's insert) takes the event loop.
            found = [await read(unique[0])]
        else:
            found = await asyncio.gather(*(read(name) for name in unique))
        return [pod for pod in found if pod is not None]

    async def list_pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
        pods = await self._api.call(
            ApiRequest(
                Operation("list", "pods", namespace=namespace),
                query=(("labelSelector", label_selector),),
                returns="V1PodList",
            )
        )
        return [_pod_info(pod) for pod in pods.items or []]

    async def create_service_account(self, target: GrantTarget) -> None:
        namespace = self.grants_namespace
        await self._create(
            Operation(
                "create", "serviceaccounts", namespace=namespace, name=_object_name_of(target)
            ),
            service_account_manifest(target, namespace, self.installation_id),
            target.grant_id,
        )

    async def create_role(self, target: GrantTarget, rules: list[dict[str, Any]]) -> None:
        # Escalation prevention: the API server refuses a Role holding any permission scangate
        # lacks itself (unless it had `escalate`, which it must not).
        await self._create(
            Operation("create", "roles", RBAC_GROUP, target.namespace, _object_name_of(target)),
            role_manifest(target, rules, self.installation_id),
            target.grant_id,
        )

    async def create_role_binding(self, target: GrantTarget) -> None:
        await self._create(
            Operation(
                "create", "rolebindings", RBAC_GROUP, target.namespace, _object_name_of(target)
            ),
            role_binding_manifest(target, self.grants_namespace, self.installation_id),
            target.grant_id,
        )

    async def delete_grant_objects(self, grant_id: str, namespace: str) -> None:
        """Delete the SA first: that alone invalidates every token minted for it (the token
        authenticator checks the SA still exists), so access ends even if a later step fails.
        Then the RoleBinding and the Role. 404 counts as already deleted."""
        await self.delete_grant_access(grant_id)
        await self.delete_grant_rbac(grant_id, namespace)

    async def delete_grant_access(self, grant_id: str) -> None:
        """The first step of `delete_grant_objects`: the ServiceAccount, which ends access."""
        name = object_name(grant_id)
        await self.delete_managed_object(
            ManagedObject("ServiceAccount", self.grants_namespace, name, grant_id)
        )

    async def delete_grant_rbac(self, grant_id: str, namespace: str) -> None:
        """The rest of `delete_grant_objects`: the RoleBinding, then the Role."""
        name = object_name(grant_id)
        for obj in (
            ManagedObject("RoleBinding", namespace, name, grant_id),
            ManagedObject("Role", namespace, name, grant_id),
        ):
            await self.delete_managed_object(obj)

    async def request_token(self, grant_id: str, expiration_seconds: int) -> IssuedToken:
        """Mint a token for the grant's SA. Never stored: callers hand it straight out."""
        if expiration_seconds < MIN_TOKEN_SECONDS:
            raise ValueError(
                f"expiration_seconds must be at least {MIN_TOKEN_SECONDS} (TokenRequest minimum)"
            )
        name = object_name(grant_id)
        response = await self._api.call(
            ApiRequest(
                Operation(
                    "create", "serviceaccounts/token", namespace=self.grants_namespace, name=name
                ),
                body={
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": expiration_seconds},
                },
                returns="AuthenticationV1TokenRequest",
            )
        )
        status = response.status
        if status is None or not status.token or status.expiration_timestamp is None:
            raise KubeError(f'cluster "{self.name}" returned a TokenRequest without a token')
        # The server may shorten the lifetime; its expirationTimestamp is the truth.
        return IssuedToken(token=status.token, expires_at=_utc(status.expiration_timestamp))

    async def list_managed_objects(self, namespaces: Iterable[str] = ()) -> list[ManagedObject]:
        return await self._inventory.collect(namespaces)

    async def delete_managed_object(self, obj: ManagedObject) -> DeleteOutcome:
        """Delete `obj` only if it is this installation's object of its grant
        (`owned_deletes.py`: read, compare labels, delete with uid/resourceVersion
        preconditions)."""
        return await self._deleter.delete(obj)

    async def aclose(self) -> None:
        await self._api_client.close()  # type: ignore[no-untyped-call]

    async def _create(self, operation: Operation, body: dict[str, Any], grant_id: str) -> None:
        async def ours_already() -> bool | None:
            # A retried create that answers 409: the lost first try probably succeeded. The
            # object counts as created only if it carries this grant's and installation's labels.
            read = dataclasses.replace(operation, verb="get")
            try:
                existing = await self._api.call(ApiRequest(read, returns="object"))
            except KubeNotFound:
                return None
            labels = (existing.get("metadata") or {}).get("labels") or {}
            problem = ownership_problem(
                labels, grant_id=grant_id, installation_id=self.installation_id
            )
            ours = problem is None and labels.get(INSTALLATION_LABEL) == self.installation_id
            return True if ours else None

        await self._api.call(ApiRequest(operation, body=body), on_conflict_after_retry=ours_already)


class ClusterRegistry:
    """The configured clusters by name. Built in the app lifespan, never at import time."""

    def __init__(self, clusters: Iterable[ClusterClient]) -> None:
        self._clusters: dict[str, ClusterClient] = {}
        for cluster in clusters:
            if cluster.name in self._clusters:
                raise ValueError(f"cluster {cluster.name!r} is configured twice")
            self._clusters[cluster.name] = cluster

    @classmethod
    async def from_settings(
        cls,
        clusters: Sequence[ClusterSettings],
        *,
        max_concurrency: int = 64,
        retry: RetryPolicy | None = None,
        observer: CallObserver | None = None,
    ) -> ClusterRegistry:
        """Connect to every configured cluster (in the running event loop, which their
        connection pools belong to)."""
        built: list[ClusterClient] = []
        try:
            for settings in clusters:
                built.append(
                    await ClusterClient.connect(
                        settings, max_concurrency=max_concurrency, retry=retry, observer=observer
                    )
                )
            return cls(built)
        except BaseException:
            for cluster in built:
                await cluster.aclose()
            raise

    def get(self, name: str) -> ClusterClient:
        return self._clusters[name]

    def names(self) -> list[str]:
        return list(self._clusters)

    async def aclose(self) -> None:
        for cluster in self._clusters.values():
            await cluster.aclose()


def _object_name_of(target: GrantTarget) -> str:
    return object_name(target.grant_id)


def _pod_info(pod: Any) -> PodInfo:
    spec = pod.spec
    containers = [c.name for c in (spec.containers if spec else None) or []]
    # Native sidecars (init containers with restartPolicy Always, Kubernetes >= 1.29) run
    # for the pod's whole life, so they count as containers of the pod.
    containers += [
        c.name
        for c in (spec.init_containers if spec else None) or []
        if c.restart_policy == "Always"
    ]
    return PodInfo(
        name=pod.metadata.name,
        phase=(pod.status.phase if pod.status else None) or "Unknown",
        labels=dict(pod.metadata.labels or {}),
        containers=tuple(containers),
        exposure=pod_exposure(spec),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

"""Finds every object labelled managed-by=scangate (of every installation: the sweep tells its
own apart by the installation label), for the reaper's orphan sweep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from app.kube.api_calls import ApiRequest, ClusterApi
from app.kube.errors import KubeForbidden, KubeNotFound
from app.kube.manifests import API_RESOURCES
from app.kube.models import ManagedKind, ManagedObject
from app.kube.naming import (
    GRANT_LABEL,
    INSTALLATION_LABEL,
    MANAGED_SELECTOR,
    TARGET_NAMESPACE_ANNOTATION,
)
from app.kube.operations import Operation

_BY_LABEL = (("labelSelector", MANAGED_SELECTOR),)
_RBAC_KINDS: tuple[ManagedKind, ...] = ("Role", "RoleBinding")

log = logging.getLogger(__name__)


class ManagedObjectInventory:
    def __init__(self, api: ClusterApi, grants_namespace: str) -> None:
        self._api = api
        self._grants_namespace = grants_namespace

    async def collect(self, namespaces: Iterable[str] = ()) -> list[ManagedObject]:
        """SAs in the grants namespace, plus Roles and RoleBindings anywhere.

        The Helm chart may grant scangate RBAC rights only in its target namespaces, so a
        cluster-wide list can be forbidden; then each known namespace is listed instead: the
        ones given plus those recorded on the SAs' target-namespace annotation.
        """
        accounts = await self._api.call(
            ApiRequest(
                Operation("list", "serviceaccounts", namespace=self._grants_namespace),
                query=_BY_LABEL,
                returns="V1ServiceAccountList",
            )
        )
        found = [_managed("ServiceAccount", item) for item in accounts.items or []]
        try:
            found += await self._list_rbac_cluster_wide()
        except KubeForbidden:
            annotated = {
                (item.metadata.annotations or {}).get(TARGET_NAMESPACE_ANNOTATION)
                for item in accounts.items or []
                if item.metadata is not None
            }
            known = {ns for ns in annotated if ns} | set(namespaces)
            log.info(
                "cluster %s: listing scangate Roles cluster-wide is forbidden; "
                "listing %d namespaces one by one",
                self._api.cluster,
                len(known),
            )
            per_namespace = await asyncio.gather(*(self._list_rbac_in(ns) for ns in sorted(known)))
            found += [obj for objects in per_namespace for obj in objects]
        return found

    async def _list_rbac_cluster_wide(self) -> list[ManagedObject]:
        roles, bindings = await asyncio.gather(*(self._list(kind) for kind in _RBAC_KINDS))
        return roles + bindings

    async def _list_rbac_in(self, namespace: str) -> list[ManagedObject]:
        found: list[ManagedObject] = []
        for kind in _RBAC_KINDS:
            try:
                found += await self._list(kind, namespace)
            except (KubeForbidden, KubeNotFound) as exc:
                # scangate cannot create objects where it cannot list them either, so a
                # namespace outside its reach holds nothing of ours; sweep the others.
                log.warning("cluster %s: skipping namespace sweep: %s", self._api.cluster, exc)
        return found

    async def _list(self, kind: ManagedKind, namespace: str | None = None) -> list[ManagedObject]:
        """scangate's objects of `kind` in `namespace` (None: in every namespace)."""
        group, resource = API_RESOURCES[kind]
        operation = Operation("list", resource, group, namespace)
        result = await self._api.call(
            ApiRequest(operation, query=_BY_LABEL, returns=f"V1{kind}List")
        )
        return [_managed(kind, item) for item in result.items or []]


def _managed(kind: ManagedKind, item: Any) -> ManagedObject:
    metadata = item.metadata
    labels = metadata.labels or {}
    return ManagedObject(
        kind=kind,
        namespace=metadata.namespace,
        name=metadata.name,
        grant_id=labels.get(GRANT_LABEL),
        installation=labels.get(INSTALLATION_LABEL),
        uid=metadata.uid,
        resource_version=metadata.resource_version,
    )

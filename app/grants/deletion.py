"""Deleting grants' cluster objects, in the order that ends access soonest: the one delete
helper of revocation, expiry, failure cleanup and the orphan sweep.

A real API server caches token authentications (kube-apiserver: about 10 s by default), so a
token of a deleted ServiceAccount may still authenticate until its cache entry expires; RBAC
decisions are not cached that way, so a deleted RoleBinding denies the token's next request at
once. The RoleBinding therefore goes first; once it is gone the ServiceAccount and the Role are
deleted in parallel (the ServiceAccount still matters: it ends authentication for good, and with
it every token minted for the grant). 404 counts as deleted.

Every delete is guarded (`app/kube/owned_deletes.py`): the object is read and deleted only if
its labels say it is this installation's object of this grant, with uid/resourceVersion
preconditions. An object by the grant's name that is not ours (another installation's, a
person's) is left alone and counts as done: this grant has nothing there to delete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from app.kube.clusters import ClusterClient, ClusterRegistry
from app.kube.errors import KubeError
from app.kube.models import ManagedKind, ManagedObject
from app.kube.naming import object_name

# The sweep sorts each grant's leftovers by this: the RoleBinding first (see the docstring).
DELETE_ORDER: Final[dict[ManagedKind, int]] = {"RoleBinding": 0, "ServiceAccount": 1, "Role": 2}


class GrantObjects(Protocol):
    """Where a grant's objects are (a `Grant` row or a `ClaimedGrant` both say)."""

    @property
    def id(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def namespace(self) -> str: ...


def _access_objects(cluster: ClusterClient, grant: GrantObjects) -> list[ManagedObject]:
    return [ManagedObject("RoleBinding", grant.namespace, object_name(grant.id), grant.id)]


def _remaining_objects(cluster: ClusterClient, grant: GrantObjects) -> list[ManagedObject]:
    name = object_name(grant.id)
    return [
        ManagedObject("ServiceAccount", cluster.grants_namespace, name, grant.id),
        ManagedObject("Role", grant.namespace, name, grant.id),
    ]


async def delete_grants_objects(
    clusters: ClusterRegistry, grants: Sequence[GrantObjects], *, concurrency: int
) -> dict[str, str]:
    """Delete the objects of every grant in `grants`, `concurrency` calls at a time: every
    RoleBinding first (so when many grants end together, all of them lose access before any
    time goes to objects that grant nothing by themselves), then the ServiceAccounts and
    Roles. Returns `{grant id: first error}` of the grants whose deletion failed (safe to
    show: kube errors carry no tokens or raw bodies). The second step runs even where the first
    failed (say, scangate may not delete in that namespace): whatever can go, goes now."""
    errors: dict[str, str] = {}
    semaphore = asyncio.Semaphore(concurrency)

    async def attempt(
        grant: GrantObjects, objects: Callable[[ClusterClient, GrantObjects], list[ManagedObject]]
    ) -> None:
        try:
            cluster = clusters.get(grant.cluster)
        except KeyError:
            errors[grant.id] = f"cluster {grant.cluster!r} is not configured"
            return

        async def delete(obj: ManagedObject) -> None:
            async with semaphore:
                outcome = await cluster.delete_managed_object(obj)
            if outcome == "changed":
                # Still there and still ours, but rewritten between each read and delete:
                # the grant stays `revoking` and the reaper tries again.
                raise KubeError(
                    f"{obj.kind} {obj.namespace}/{obj.name} kept changing while being deleted"
                )

        results = await asyncio.gather(
            *(delete(obj) for obj in objects(cluster, grant)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, KubeError):
                errors.setdefault(grant.id, str(result))
            elif isinstance(result, BaseException):
                raise result

    await asyncio.gather(*(attempt(g, _access_objects) for g in grants))
    await asyncio.gather(*(attempt(g, _remaining_objects) for g in grants))
    return errors


async def delete_grant_objects(clusters: ClusterRegistry, grant: GrantObjects) -> str | None:
    """`delete_grants_objects` for one grant: None when its objects are gone, else the error."""
    errors = await delete_grants_objects(clusters, [grant], concurrency=2)
    return errors.get(grant.id)

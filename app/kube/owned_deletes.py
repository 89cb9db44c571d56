"""Deleting a grant's objects only when they are this installation's.

Several scangate installations may share a cluster (different grants namespaces over the same
target namespaces), and a person may create an object that merely looks like scangate's. So a
delete never goes by name alone: the object is read, its labels are compared (managed by
scangate, this grant, this installation), and the delete carries the uid and resourceVersion
that were read as preconditions: if the object was replaced or changed in between (another
installation's object under the same name, a relabelled one), the API server answers 409 and
nothing is deleted; the object is then judged again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

from app.kube.api_calls import ApiRequest, ClusterApi
from app.kube.errors import KubeConflict, KubeNotFound
from app.kube.manifests import API_RESOURCES
from app.kube.models import ManagedObject
from app.kube.naming import GRANT_LABEL, INSTALLATION_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from app.kube.operations import Operation

# deleted: it was ours and is gone; absent: nothing by that name; foreign: an object by that
# name that is not ours, left alone; changed: it kept changing between read and delete.
DeleteOutcome = Literal["deleted", "absent", "foreign", "changed"]

# Reads and conditional deletes per object before giving up (an object rewritten that often
# is being fought over; the next reaper pass judges it again).
_ATTEMPTS: Final = 3

log = logging.getLogger(__name__)


def ownership_problem(
    labels: Mapping[str, str], *, grant_id: str | None, installation_id: str
) -> str | None:
    """Why an object with `labels` is not this installation's object of `grant_id`; None
    when it is. An object without an installation label, named for a grant of ours, was
    created before installations were labelled: it is ours (grant ids are unique ULIDs)."""
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return f"it is not labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
    if grant_id is None or labels.get(GRANT_LABEL) != grant_id:
        return f"its {GRANT_LABEL} label is not {grant_id}"
    installation = labels.get(INSTALLATION_LABEL)
    if installation is not None and installation != installation_id:
        return f"it belongs to scangate installation {installation!r}"
    return None


class OwnedObjectDeleter:
    """Deletes one cluster's objects of this installation, and nothing else."""

    def __init__(self, api: ClusterApi, installation_id: str) -> None:
        self._api = api
        self._installation_id = installation_id

    async def delete(self, obj: ManagedObject) -> DeleteOutcome:
        """Delete `obj` if it is this installation's object of `obj.grant_id`.

        An `obj` from a listing (with its uid) was judged by the caller on the labels listed:
        it is deleted only if it is still exactly that object (else `changed`: judged again
        on the next sweep). Otherwise it is read and judged here first."""
        if obj.uid is not None:
            return await self._delete_exactly(obj, obj.uid, obj.resource_version)
        group, resource = API_RESOURCES[obj.kind]
        read = Operation("get", resource, group, obj.namespace, obj.name)
        for _ in range(_ATTEMPTS):
            try:
                current = await self._api.call(ApiRequest(read, returns="object"))
            except KubeNotFound:
                return "absent"
            metadata: dict[str, Any] = current.get("metadata") or {}
            problem = ownership_problem(
                metadata.get("labels") or {},
                grant_id=obj.grant_id,
                installation_id=self._installation_id,
            )
            if problem is not None:
                log.warning(
                    "cluster %s: %s %s/%s left alone: %s",
                    self._api.cluster, obj.kind, obj.namespace, obj.name, problem,
                )  # fmt: skip
                return "foreign"
            outcome = await self._delete_exactly(
                obj, metadata.get("uid"), metadata.get("resourceVersion")
            )
            if outcome != "changed":
                return outcome
        return "changed"

    async def _delete_exactly(
        self, obj: ManagedObject, uid: str | None, resource_version: str | None
    ) -> DeleteOutcome:
        group, resource = API_RESOURCES[obj.kind]
        preconditions = {
            key: value
            for key, value in (("uid", uid), ("resourceVersion", resource_version))
            if value
        }
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
        operation = Operation("delete", resource, group, obj.namespace, obj.name)
        try:
            await self._api.call(ApiRequest(operation, body=body))
        except KubeNotFound:
            # Already gone, or deleted by an earlier try whose answer was lost.
            return "absent"
        except KubeConflict:
            return "changed"
        return "deleted"

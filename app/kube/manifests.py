"""The manifests of a grant's objects, as API dicts (camelCase field names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from app.kube.models import GrantTarget, ManagedKind
from app.kube.naming import (
    EXPIRES_AT_ANNOTATION,
    GRANT_LABEL,
    INSTALLATION_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REQUESTER_ANNOTATION,
    SCANNER_ANNOTATION,
    TARGET_NAMESPACE_ANNOTATION,
    object_name,
)

RBAC_GROUP = "rbac.authorization.k8s.io"

# Where each kind of object scangate manages lives in the API: (group, plural resource).
API_RESOURCES: Final[dict[ManagedKind, tuple[str, str]]] = {
    "ServiceAccount": ("", "serviceaccounts"),
    "Role": (RBAC_GROUP, "roles"),
    "RoleBinding": (RBAC_GROUP, "rolebindings"),
}


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def grant_labels(grant_id: str, installation_id: str) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        GRANT_LABEL: grant_id,
        INSTALLATION_LABEL: installation_id,
    }


def grant_metadata(target: GrantTarget, namespace: str, installation_id: str) -> dict[str, Any]:
    return {
        "name": object_name(target.grant_id),
        "namespace": namespace,
        "labels": grant_labels(target.grant_id, installation_id),
        "annotations": {
            REQUESTER_ANNOTATION: target.requester,
            EXPIRES_AT_ANNOTATION: rfc3339(target.expires_at),
            SCANNER_ANNOTATION: target.scanner,
        },
    }


def service_account_manifest(
    target: GrantTarget, grants_namespace: str, installation_id: str
) -> dict[str, Any]:
    metadata = grant_metadata(target, grants_namespace, installation_id)
    # Lets the orphan sweep find the target namespace when scangate may not list Roles
    # cluster-wide.
    metadata["annotations"][TARGET_NAMESPACE_ANNOTATION] = target.namespace
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata,
        # Only TokenRequest mints its tokens; no pod should ever run as a grant's identity.
        "automountServiceAccountToken": False,
    }


def role_manifest(
    target: GrantTarget, rules: list[dict[str, Any]], installation_id: str
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": grant_metadata(target, target.namespace, installation_id),
        "rules": rules,
    }


def role_binding_manifest(
    target: GrantTarget, grants_namespace: str, installation_id: str
) -> dict[str, Any]:
    name = object_name(target.grant_id)
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": grant_metadata(target, target.namespace, installation_id),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        # The SA lives in the grants namespace, not the target: a RoleBinding may name a
        # subject from any namespace.
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": grants_namespace}],
    }

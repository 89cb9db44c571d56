"""Names, labels and annotations of the Kubernetes objects scangate creates for a grant."""

from __future__ import annotations

from typing import Final

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "scangate"
GRANT_LABEL: Final = "scangate.dev/grant"
# Which scangate installation created the object (`installation_id`): installations sharing a
# cluster (different grants namespaces over the same target namespaces) touch only their own.
INSTALLATION_LABEL: Final = "scangate.dev/installation"
MANAGED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"

REQUESTER_ANNOTATION: Final = "scangate.dev/requester"
EXPIRES_AT_ANNOTATION: Final = "scangate.dev/expires-at"
SCANNER_ANNOTATION: Final = "scangate.dev/scanner"
TARGET_NAMESPACE_ANNOTATION: Final = "scangate.dev/target-namespace"

OBJECT_NAME_PREFIX: Final = "scangate-"
# DNS-1123 label limit; Role/RoleBinding/ServiceAccount names are subdomains (253) but
# staying within 63 keeps the name usable as a label value too.
_MAX_NAME_LENGTH: Final = 63


def object_name(grant_id: str) -> str:
    """The name of every object of a grant: `scangate-<id>`."""
    name = f"{OBJECT_NAME_PREFIX}{grant_id}"
    if len(name) > _MAX_NAME_LENGTH:
        raise ValueError(f"grant id too long for a Kubernetes object name: {grant_id!r}")
    return name

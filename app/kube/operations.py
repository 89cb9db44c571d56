"""A description of one Kubernetes API call, used for retries, logs and error messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    verb: str  # RBAC verb: get, list, create, delete, ...
    resource: str  # plural resource, with subresource: "pods", "serviceaccounts/token"
    group: str = ""  # API group; "" is the core group
    namespace: str | None = None
    name: str | None = None

    @property
    def qualified_resource(self) -> str:
        """kubectl's spelling: "roles.rbac.authorization.k8s.io", "serviceaccounts/token"."""
        return qualify_resource(self.resource, self.group)

    @property
    def scope(self) -> str:
        if self.namespace is None:
            return "at cluster scope"
        return f'in namespace "{self.namespace}"'

    @property
    def permission(self) -> str:
        """The RBAC permission this call needs, e.g. 'create roles.rbac... in namespace "x"'."""
        return f"{self.verb} {self.qualified_resource} {self.scope}"

    def __str__(self) -> str:
        target = f' "{self.name}"' if self.name else ""
        return f"{self.verb} {self.qualified_resource}{target} {self.scope}"


def qualify_resource(resource: str, group: str) -> str:
    if not group:
        return resource
    base, _, sub = resource.partition("/")
    return f"{base}.{group}/{sub}" if sub else f"{base}.{group}"

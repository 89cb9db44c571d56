"""A description of one Kubernetes API call: the HTTP request it is, and how retries, logs and
error messages name it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

_HTTP_METHODS: Final = {"get": "GET", "list": "GET", "create": "POST", "delete": "DELETE"}


@dataclass(frozen=True)
class Operation:
    verb: str  # RBAC verb: get, list, create, delete, ...
    resource: str  # plural resource, with subresource: "pods", "serviceaccounts/token"
    group: str = ""  # API group; "" is the core group
    namespace: str | None = None
    name: str | None = None
    version: str = "v1"

    @property
    def http_method(self) -> str:
        return _HTTP_METHODS[self.verb]

    @property
    def path(self) -> str:
        """The request path: `/api/v1/namespaces/ns/pods/web-0`, `/apis/rbac.../roles`, ..."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace is not None:
            base += f"/namespaces/{_segment(self.namespace)}"
        resource, _, subresource = self.resource.partition("/")
        path = f"{base}/{resource}"
        # A create goes to the collection (the name is in the body), unless it creates a
        # subresource of a named object (serviceaccounts/token).
        if self.name is not None and (self.verb != "create" or subresource):
            path += f"/{_segment(self.name)}"
        return f"{path}/{subresource}" if subresource else path

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


def _segment(value: str) -> str:
    return quote(value, safe="")

"""Turning a method and URL into what RBAC authorizes, as kube-apiserver's RequestInfoFactory does.

The details matter for authorization: GET on a collection is `list`, `?watch=true` is `watch`,
DELETE on a collection is `deletecollection`, `/namespaces/foo` is resource `namespaces` named
`foo` *in namespace* `foo`, and a list with `fieldSelector=metadata.name=x` carries the name
`x` so that a rule with resourceNames can allow it. `/api/v1` and `/apis/<group>/<version>`
themselves are non-resource URLs (discovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kubesim.rbac import RequestAttributes

_VERBS: Final = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch"}
_NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    # More path segments than Kubernetes URLs have (e.g. /pods/x/log/extra): a 404.
    extra_parts: bool = False

    def attributes(self) -> RequestAttributes:
        return RequestAttributes(
            verb=self.verb,
            api_group=self.api_group,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
            namespace=self.namespace,
            path=self.path,
            resource_request=self.resource_request,
        )


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def parse_request(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    non_resource = RequestInfo(path=path, verb=method.lower(), resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:
            return non_resource
        group, version, current = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return non_resource
        group, version, current = parts[1], parts[2], parts[3:]

    verb = _VERBS.get(method.upper(), method.lower())
    if method.upper() == "DELETE":
        verb = "delete"
    if current[0] == "watch":
        # The deprecated /watch/ path prefix.
        verb, current = "watch", current[1:]
        if not current:
            return non_resource

    namespace = ""
    if current[0] == "namespaces" and len(current) > 1:
        namespace = current[1]
        # /namespaces/<ns>/<resource>/...: the namespace prefix, unless what follows is a
        # subresource of the Namespace object itself.
        if len(current) > 2 and current[2] not in _NAMESPACE_SUBRESOURCES:
            current = current[2:]

    resource = current[0]
    name = current[1] if len(current) > 1 else ""
    subresource = current[2] if len(current) > 2 else ""

    if not name:
        if verb == "get":
            verb = "watch" if _truthy(query.get("watch")) else "list"
        elif verb == "delete":
            verb = "deletecollection"
    if verb in ("list", "watch"):
        # A list narrowed to one name by field selector is authorized as that name.
        for term in (query.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and not value.startswith("="):
                name = value.strip()
            elif key.strip() == "metadata.name" and value.startswith("="):
                name = value[1:].strip()
    return RequestInfo(
        path=path,
        verb=verb,
        resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        extra_parts=len(current) > 3,
    )

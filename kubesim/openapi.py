"""A minimal OpenAPI v3 index, enough for kubectl's field-validation probe.

`kubectl apply/create -f` validate strictly by default: kubectl reads /openapi/v3 to learn
whether the server validates fields itself (the `fieldValidation` query parameter on PATCH).
If it can't tell, it falls back to downloading the whole v2 schema and fails without it. kubesim
answers the probe ("yes, server-side") and accepts the parameter; its own validation is what
`kubesim.validation` does. No schemas are published: kubectl then computes strategic merge
patches from its compiled-in types, as it does for any built-in resource.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubesim.resources import RESOURCE_TYPES, ResourceType

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "Ignore, Warn or Strict; kubesim validates the fields it knows.",
    "schema": {"type": "string", "uniqueItems": True},
}


def _group_version_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _served_group_versions() -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.group, r.version) for r in RESOURCE_TYPES))


def _hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32].upper()


def openapi_root() -> dict[str, Any]:
    paths = {}
    for group, version in _served_group_versions():
        path = _group_version_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(path)}"}
    return {"paths": paths}


def _patch_path(rt: ResourceType) -> tuple[str, dict[str, Any]]:
    prefix = "/" + _group_version_path(rt.group, rt.version)
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    operation = {
        "operationId": f"patch{rt.kind}",
        "parameters": [_FIELD_VALIDATION],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }
    return f"{prefix}{scope}/{rt.plural}/{{name}}", {"patch": operation}


def openapi_group_version(path: str) -> dict[str, Any] | None:
    """The document for `api/v1` or `apis/<group>/<version>`, or None if not served."""
    for group, version in _served_group_versions():
        if _group_version_path(group, version) == path:
            types = [r for r in RESOURCE_TYPES if (r.group, r.version) == (group, version)]
            return {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes (kubesim)", "version": "v1.32.0"},
                "paths": dict(_patch_path(rt) for rt in types if not rt.virtual),
                "components": {"schemas": {}},
            }
    return None

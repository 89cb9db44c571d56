"""The in-memory object store: kubesim's etcd.

It only keeps objects and hands out resource versions; the API rules (uids, conflicts,
validation, cascades) live in `kubesim.objects`. Objects are plain dicts exactly as the API
returns them, and callers get deep copies so that no handler can change stored state by
accident. It also implements the RBAC evaluator's `RbacObjects` view.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from kubesim.resources import RESOURCE_TYPES, ResourceType, resource

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


class Clock:
    """Wall-clock time that tests may move forward, so that token expiry can be tested
    without waiting the ten-minute minimum lifetime of a TokenRequest."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def now(self) -> float:
        return time.time() + self.offset_seconds

    def timestamp(self) -> str:
        """RFC 3339 in seconds, the apiserver's format for metadata timestamps."""
        return datetime.fromtimestamp(int(self.now()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self) -> None:
        # (group, plural) -> namespace ("" for cluster-scoped) -> name -> object
        self._objects: dict[tuple[str, str], dict[str, dict[str, Obj]]] = {}
        self._resource_version = 0

    def clear(self) -> None:
        self._objects.clear()

    def next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    @property
    def resource_version(self) -> str:
        return str(self._resource_version)

    def _table(self, rt: ResourceType) -> dict[str, dict[str, Obj]]:
        return self._objects.setdefault((rt.group, rt.plural), {})

    def peek(self, rt: ResourceType, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Read without copying; for hot read-only paths (authentication, RBAC, GET)."""
        return self._table(rt).get(namespace, {}).get(name)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        obj = self.peek(rt, namespace, name)
        return copy.deepcopy(dict(obj)) if obj is not None else None

    def exists(self, rt: ResourceType, namespace: str, name: str) -> bool:
        return self.peek(rt, namespace, name) is not None

    def iter(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Mapping[str, Any]]:
        """Objects in etcd key order (namespace, then name), without copying."""
        table = self._table(rt)
        namespaces = sorted(table) if namespace is None else [namespace]
        for ns in namespaces:
            objects = table.get(ns, {})
            for name in sorted(objects):
                yield objects[name]

    def namespaced_types(self) -> list[ResourceType]:
        """The stored resource types that live in namespaces (what a namespace deletion
        must delete)."""
        return [r for r in RESOURCE_TYPES if r.namespaced and not r.virtual]

    def put(self, rt: ResourceType, obj: Obj) -> Obj:
        """Store `obj` with a fresh resourceVersion; returns a copy of what was stored."""
        meta = obj["metadata"]
        meta["resourceVersion"] = self.next_resource_version()
        stored = copy.deepcopy(obj)
        self._table(rt).setdefault(meta.get("namespace", ""), {})[meta["name"]] = stored
        return copy.deepcopy(stored)

    def remove(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        objects = self._table(rt).get(namespace, {})
        obj = objects.pop(name, None)
        if obj is not None:
            # A delete is a write: it moves the store's resourceVersion like etcd's revision.
            self.next_resource_version()
        return obj

    # RbacObjects: the evaluator reads the live objects, so a deleted binding stops
    # granting on the very next request, as it does with the apiserver's watch cache.
    def cluster_roles(self) -> Iterable[Mapping[str, Any]]:
        return self.iter(resource("rbac.authorization.k8s.io", "clusterroles"))

    def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]:
        return self.iter(resource("rbac.authorization.k8s.io", "clusterrolebindings"))

    def roles(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self.iter(resource("rbac.authorization.k8s.io", "roles"), namespace)

    def role_bindings(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self.iter(resource("rbac.authorization.k8s.io", "rolebindings"), namespace)

    def get_role(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.peek(resource("rbac.authorization.k8s.io", "roles"), namespace, name)

    def get_cluster_role(self, name: str) -> Mapping[str, Any] | None:
        return self.peek(resource("rbac.authorization.k8s.io", "clusterroles"), "", name)

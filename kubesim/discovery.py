"""Discovery documents: /version, /api, /api/v1, /apis, /apis/<group>[/<version>].

kubectl and Helm build their REST mappings from these, so they are generated from the same
resource table the router uses. kubesim serves the unaggregated forms; clients that ask for
aggregated discovery (apidiscovery.k8s.io/v2) fall back to them when the response's media type
is plain `application/json`, as with an older apiserver.
"""

from __future__ import annotations

from typing import Any

from kubesim.resources import RESOURCE_TYPES, group_versions
from kubesim.versions import KubeVersion


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in group_versions().items()],
    }


def api_group(name: str) -> dict[str, Any] | None:
    versions = group_versions().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    types = [r for r in RESOURCE_TYPES if r.group == group and r.version == version]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub.kind or rt.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group:
                sub_entry["group"], sub_entry["version"] = sub.group, sub.version
            resources.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def discovery_document(
    path: str, server_address: str, version: KubeVersion
) -> dict[str, Any] | None:
    """The discovery document at `path`, or None when `path` is not a discovery URL."""
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        return version.version_info()
    if parts == ["api"]:
        return api_versions(server_address)
    if len(parts) == 2 and parts[0] == "api":
        return api_resource_list("", parts[1])
    if parts == ["apis"]:
        return api_group_list()
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return api_resource_list(parts[1], parts[2])
    return None

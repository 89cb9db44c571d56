"""Renders the kubeconfig handed to a grant's requester: one cluster, one user, one context,
never insecure-skip-tls-verify."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.kube.naming import object_name

if TYPE_CHECKING:
    from app.kube.clusters import ClusterClient


def render_kubeconfig(
    cluster: ClusterClient, grant_id: str, namespace: str, token: str
) -> dict[str, Any]:
    """One cluster, one user (the token), one context `scangate-<id>` in the target namespace.

    TLS verification is never turned off: without a configured CA the client falls back to its
    system trust store rather than to `insecure-skip-tls-verify`, which would hand the token to
    anyone able to intercept the connection.
    """
    name = object_name(grant_id)
    cluster_entry: dict[str, Any] = {"server": cluster.server}
    if cluster.certificate_authority_data:
        cluster_entry["certificate-authority-data"] = cluster.certificate_authority_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster.name, "cluster": cluster_entry}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": cluster.name, "user": name, "namespace": namespace},
            }
        ],
        "current-context": name,
    }

"""What a grant names: the target pods, resolved and checked against the cluster before the Role
is written (`GrantLifecycle.provision_grant` runs this while the `provisioning` row commits)."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import ScangateError
from app.grants.errors import NamespaceNotFound, NoPodsMatch, PodsNotFound, SidecarMissing
from app.grants.policy_limits import check_pod_count
from app.kube.clusters import ClusterClient
from app.kube.errors import KubeError
from app.kube.models import PodInfo
from app.kube.naming import object_name


def service_account_username(grants_namespace: str, grant_id: str) -> str:
    """The Kubernetes username of a grant's ServiceAccount, as the cluster's audit log shows it."""
    return f"system:serviceaccount:{grants_namespace}:{object_name(grant_id)}"


@dataclass(frozen=True)
class PodRequest:
    """What to resolve: named pods or a selector, plus the limits that apply."""

    namespace: str
    pods: list[str] | None
    selector: str | None
    scanner: str
    max_pods: int
    sidecar_container: str


async def resolve_target_pods(cluster: ClusterClient, request: PodRequest) -> list[str]:
    """The pod names the Role will name, after checking the target is grantable.

    Named pods must exist (any phase: naming a pod is explicit). A selector is resolved once, now,
    to the matching Running pods: RBAC has no label selectors, so pods created later are not
    covered. A sidecar grant needs the configured sidecar container in every pod, because that
    profile only reads logs and would otherwise grant access to nothing useful.
    """
    if request.pods is not None:
        lookup = cluster.get_pods(request.namespace, request.pods)
    else:
        assert request.selector is not None
        lookup = cluster.list_pods(request.namespace, request.selector)
    try:
        pods = _check_found(request, await lookup)
    except (KubeError, ScangateError):
        # The namespace is looked up only when the pods were not found (had they been, it
        # exists), so a grant spends no API call on it. A missing namespace is reported first,
        # whatever else failed, so the same request always gets the same answer.
        if not await cluster.namespace_exists(request.namespace):
            raise NamespaceNotFound(
                f"namespace {request.namespace!r} does not exist", field="body.namespace"
            ) from None
        raise
    check_pod_count(
        len(pods),
        request.max_pods,
        field="body.selector" if request.selector is not None else "body.pods",
        pods=[p.name for p in pods],
    )
    if request.scanner == "sidecar":
        lacking = sorted(p.name for p in pods if request.sidecar_container not in p.containers)
        if lacking:
            raise SidecarMissing(
                f"pods without the sidecar container {request.sidecar_container!r}: "
                + ", ".join(lacking),
                field="body.scanner",
                pods=lacking,
                container=request.sidecar_container,
            )
    return sorted(p.name for p in pods)


def _check_found(request: PodRequest, found: list[PodInfo]) -> list[PodInfo]:
    if request.pods is not None:
        missing = sorted(set(request.pods) - {p.name for p in found})
        if missing:
            raise PodsNotFound(
                f"pods not found in namespace {request.namespace!r}: {', '.join(missing)}",
                field="body.pods",
                pods=missing,
            )
        return found
    running = [p for p in found if p.phase == "Running"]
    if not running:
        raise NoPodsMatch(
            f"no Running pod in namespace {request.namespace!r} matches {request.selector!r}",
            field="body.selector",
        )
    return running

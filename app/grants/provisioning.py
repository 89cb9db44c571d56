"""The cluster side of creating a grant, called by `GrantLifecycle.provision_grant`: resolving
and checking the target pods (started while the `provisioning` row commits), including what an
exec/debug grant would reach inside them (the policy's `allow_pods_with`), then creating the
ServiceAccount, Role and RoleBinding in the order the API server's rules impose."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from app.db.models import Grant
from app.errors import ScangateError
from app.grants.errors import (
    NamespaceNotFound,
    NoPodsMatch,
    PodExposureRefused,
    PodsNotFound,
    SidecarMissing,
)
from app.grants.policy_limits import check_pod_count
from app.kube.clusters import ClusterClient
from app.kube.errors import KubeError
from app.kube.exposure import exposed_kinds
from app.kube.models import EXPOSURE_KINDS, GrantTarget, PodInfo
from app.kube.naming import object_name
from app.kube.profiles import profile_rules
from app.settings_sections import PolicyConfig


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
    policy: str = ""
    # The policy's `allow_pods_with`: what exec/debug grants' pods may expose.
    allow_pods_with: Collection[str] = EXPOSURE_KINDS


@dataclass(frozen=True)
class ResolvedPods:
    """The pods the Role names, sorted, and what an exec/debug grant reaches in each beyond
    the API (None for a `sidecar` grant, which reaches no container)."""

    names: list[str]
    exposure: dict[str, dict[str, Any]] | None


def pod_request_for(grant: Grant, policy: PolicyConfig, sidecar_container: str) -> PodRequest:
    """What to resolve for `grant` under the limits of `policy`."""
    return PodRequest(
        namespace=grant.namespace,
        # An explicit grant names its pods; a selector grant's are found by resolving it.
        pods=grant.pods if grant.selector is None else None,
        selector=grant.selector,
        scanner=grant.scanner,
        max_pods=policy.max_pods,
        sidecar_container=sidecar_container,
        policy=policy.name,
        allow_pods_with=policy.allow_pods_with,
    )


async def resolve_target_pods(cluster: ClusterClient, request: PodRequest) -> ResolvedPods:
    """The pods the Role will name, after checking the target is grantable.

    Named pods must exist (any phase: naming a pod is explicit). A selector is resolved once, now,
    to the matching Running pods: RBAC has no label selectors, so pods created later are not
    covered. A sidecar grant needs the configured sidecar container in every pod, because that
    profile only reads logs and would otherwise grant access to nothing useful. Exec and debug
    grants run processes in the pods, so they are refused pods exposing what the policy's
    `allow_pods_with` leaves out.
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
        # A sidecar grant only reads logs: it reaches no container, so nothing in one.
        return ResolvedPods(sorted(p.name for p in pods), exposure=None)
    _check_exposure(request, pods)
    ordered = sorted(pods, key=lambda p: p.name)
    return ResolvedPods(
        [p.name for p in ordered], exposure={p.name: p.exposure.as_json() for p in ordered}
    )


def _check_exposure(request: PodRequest, pods: list[PodInfo]) -> None:
    refused: dict[str, list[str]] = {}
    for pod in sorted(pods, key=lambda p: p.name):
        kinds = [k for k in exposed_kinds(pod.exposure) if k not in request.allow_pods_with]
        if kinds:
            refused[pod.name] = list(kinds)
    if not refused:
        return
    described = "; ".join(
        f"pod {name!r} exposes {', '.join(kinds)}" for name, kinds in refused.items()
    )
    allowed = ", ".join(request.allow_pods_with) or "nothing"
    raise PodExposureRefused(
        f"{described}: policy {request.policy!r} allows pods with {allowed} "
        f"(allow_pods_with); an {request.scanner} grant could read them from inside the pod",
        field="body.selector" if request.selector is not None else "body.pods",
        pods=refused,
        exposure={p.name: p.exposure.as_json() for p in pods if p.name in refused},
        allow_pods_with=list(request.allow_pods_with),
    )


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


async def create_grant_objects(
    cluster: ClusterClient, target: GrantTarget, lookup: asyncio.Task[ResolvedPods]
) -> ResolvedPods:
    """The ServiceAccount, Role and RoleBinding of `target`, once `lookup` (the pod
    resolution, already running) has said which pods the Role names."""
    # The ServiceAccount alongside pod resolution and the Role; the RoleBinding only once
    # the Role exists: without `bind`, the API server looks the Role up to check scangate
    # holds every permission it binds.
    service_account = asyncio.create_task(cluster.create_service_account(target))
    try:
        pods = await lookup
        await cluster.create_role(target, profile_rules(target.scanner, pods.names))
    except BaseException:
        # Let the ServiceAccount call settle before anyone cleans up, or it could land
        # after the cleanup and leave an orphan. The first error is the one reported.
        await settle(service_account)
        raise
    await service_account
    await cluster.create_role_binding(target)
    return pods


async def settle(task: asyncio.Task[Any]) -> None:
    """Wait for `task` to finish, whatever its outcome, and mark its error as retrieved (so
    asyncio does not log it as lost): the caller is already reporting another error."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


def describe_failure(exc: BaseException) -> str:
    """What a failed or rejected grant records as its `last_error` (never a secret)."""
    if isinstance(exc, ScangateError):
        return exc.detail
    if isinstance(exc, KubeError):
        return str(exc)  # safe by contract: no tokens, no raw bodies
    return f"internal error ({type(exc).__name__})"

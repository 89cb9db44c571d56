"""Creating a grant: from a validated request to an `active` grant with its Kubernetes objects.

Crash safety rests on one ordering rule: the `provisioning` row is committed before the first
cluster call that creates anything. Whatever happens afterwards (an error, a timeout, the process
dying), the database knows the grant may have objects in the cluster, and either this code or the
reaper removes them. The pod lookup is the one call that may start earlier: it only reads, so a
crash during it leaves nothing to clean up, and it hides the commit's round trips behind its own.
No transaction is open during a cluster call.

Critical path (DESIGN.md): the ServiceAccount is created alongside pod resolution and the Role;
the RoleBinding only once the Role exists, because without `bind` the API server looks the Role
up to check scangate holds every permission it binds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.auth import PolicyEngine, Principal
from app.db.engine import Database
from app.db.models import Grant
from app.errors import ScangateError
from app.grants import repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.errors import (
    NamespaceNotFound,
    NoPodsMatch,
    PodsNotFound,
    ProvisioningAbandoned,
    SidecarMissing,
    TooManyPods,
    TtlTooLong,
    UnknownCluster,
    cluster_problem,
)
from app.grants.group_commit import GrantWriter
from app.grants.ids import new_grant_id
from app.grants.schemas import GrantCreate
from app.kube.clusters import ClusterClient, ClusterRegistry
from app.kube.errors import KubeError
from app.kube.models import GrantTarget, PodInfo
from app.kube.naming import object_name
from app.kube.profiles import profile_rules
from app.observability.metrics import ScangateMetrics
from app.settings import Settings
from app.settings_sections import PolicyConfig

log = logging.getLogger(__name__)


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
    if len(pods) > request.max_pods:
        raise TooManyPods(
            f"{len(pods)} pods requested but the policy allows at most {request.max_pods}",
            field="body.selector" if request.selector is not None else "body.pods",
            pods=[p.name for p in pods],
            max_pods=request.max_pods,
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


@dataclass(frozen=True)
class GrantCollaborators:
    """What the grant use cases work with, built once per request from the app's state."""

    settings: Settings
    db: Database
    clusters: ClusterRegistry
    policies: PolicyEngine
    # Writes the rows and events of grant creation (group commit: `group_commit.py`).
    writer: GrantWriter
    # Tells the reaper about a new due moment (a no-op where no reaper runs).
    wake_reaper: Callable[[datetime], None]
    metrics: ScangateMetrics | None = None


class GrantProvisioner:
    """provision_grant and its cleanup. One instance per request (cheap; holds references)."""

    def __init__(self, deps: GrantCollaborators) -> None:
        self._deps = deps

    async def provision_grant(self, principal: Principal, request: GrantCreate) -> Grant:
        cluster_name = request.cluster or self._deps.settings.clusters[0].name
        try:
            cluster = self._deps.clusters.get(cluster_name)
        except KeyError:
            raise UnknownCluster(
                f"cluster {cluster_name!r} is not configured", field="body.cluster"
            ) from None
        policy = self._deps.policies.authorize(
            principal, cluster=cluster_name, namespace=request.namespace, scanner=request.scanner
        )
        ttl = self._ttl(request.ttl_seconds, policy)
        if request.pods is not None and len(request.pods) > policy.max_pods:
            raise TooManyPods(
                f"{len(request.pods)} pods requested but the policy allows at most "
                f"{policy.max_pods}",
                field="body.pods",
                max_pods=policy.max_pods,
            )
        pod_request = PodRequest(
            namespace=request.namespace,
            pods=request.pods,
            selector=request.selector,
            scanner=request.scanner,
            max_pods=policy.max_pods,
            sidecar_container=self._deps.settings.sidecar_container,
        )
        # The pod lookup only reads, so it may run while the provisioning row commits (see the
        # module docstring): the commit then costs no time on the critical path.
        lookup = asyncio.create_task(resolve_target_pods(cluster, pod_request))
        try:
            grant = await self._insert(principal, request, cluster, policy, ttl)
        except BaseException:
            lookup.cancel()
            await _settle(lookup)
            raise
        target = GrantTarget(
            grant_id=grant.id,
            namespace=grant.namespace,
            scanner=grant.scanner,
            requester=grant.requester,
            expires_at=grant.expires_at,
        )
        try:
            pods = await self._create_objects(cluster, target, lookup)
        except ScangateError as exc:
            await self._abandon(grant, cluster, exc, actor=principal.id)
            raise
        except KubeError as exc:
            await self._abandon(grant, cluster, exc, actor=principal.id)
            raise cluster_problem(exc) from exc
        except Exception as exc:
            # A bug: still never leave objects behind. Re-raised untranslated (a 500).
            await self._abandon(grant, cluster, exc, actor=principal.id)
            raise
        return await self._activate(grant, cluster, pods, actor=principal.id)

    def _ttl(self, requested: int | None, policy: PolicyConfig) -> int:
        if requested is None:
            # The configured default, but never more than the policy allows.
            return min(self._deps.settings.default_ttl_seconds, policy.max_ttl_seconds)
        if requested > policy.max_ttl_seconds:
            raise TtlTooLong(
                f"ttl_seconds {requested} exceeds the policy's max_ttl_seconds "
                f"{policy.max_ttl_seconds}",
                field="body.ttl_seconds",
                max_ttl_seconds=policy.max_ttl_seconds,
            )
        return requested

    async def _insert(
        self,
        principal: Principal,
        request: GrantCreate,
        cluster: ClusterClient,
        policy: PolicyConfig,
        ttl: int,
    ) -> Grant:
        now = utcnow()
        grant_id = new_grant_id()
        grant = Grant(
            id=grant_id,
            status="provisioning",
            cluster=cluster.name,
            namespace=request.namespace,
            scanner=request.scanner,
            pods=list(request.pods or []),
            selector=request.selector,
            containers=request.containers,
            requester=principal.id,
            policy=policy.name,
            reason=request.reason,
            service_account=service_account_username(cluster.grants_namespace, grant_id),
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=ttl),
            attempts=0,
        )
        # Committed here, before any cluster call (see the module docstring).
        await self._deps.writer.insert(
            grant,
            actor=principal.id,
            detail={
                "cluster": grant.cluster,
                "namespace": grant.namespace,
                "scanner": grant.scanner,
                "pods": grant.pods,
                "selector": grant.selector,
                "containers": grant.containers,
                "ttl_seconds": ttl,
                "policy": policy.name,
                "reason": request.reason,
                # The OIDC claims the policy required, as the token carried them: why this CI
                # job (repository, ref, environment...) was allowed.
                "claims": self._deps.policies.matched_claims(principal, policy),
            },
        )
        # The reaper must learn of this row: if this request dies, it is what cleans up, once
        # the provisioning timeout has passed.
        timeout = timedelta(seconds=self._deps.settings.reaper.provisioning_timeout_seconds)
        self._deps.wake_reaper(now + timeout)
        return grant

    async def _create_objects(
        self, cluster: ClusterClient, target: GrantTarget, lookup: asyncio.Task[list[str]]
    ) -> list[str]:
        service_account = asyncio.create_task(cluster.create_service_account(target))
        try:
            pods = await lookup
            await cluster.create_role(target, profile_rules(target.scanner, pods))
        except BaseException:
            # Let the ServiceAccount call settle before anyone cleans up: its HTTP request runs
            # in a worker thread that cancellation cannot stop, so it could land after the
            # cleanup and leave an orphan. The first error is the one reported.
            await _settle(service_account)
            raise
        await service_account
        await cluster.create_role_binding(target)
        return pods

    async def _activate(
        self, grant: Grant, cluster: ClusterClient, pods: list[str], *, actor: str
    ) -> Grant:
        now = utcnow()
        activated = await self._deps.writer.activate(
            grant.id,
            pods=pods,
            now=now,
            actor=actor,
            detail={"pods": pods, "expires_at": format_rfc3339(grant.expires_at)},
        )
        if not activated:
            # The reaper declared it stale, or it was revoked meanwhile: whoever did that owns
            # the end state; this request only makes sure nothing it created survives.
            await self._delete_objects(grant, cluster)
            raise ProvisioningAbandoned(
                f"grant {grant.id!r} was revoked or timed out while it was being provisioned"
            )
        grant.status, grant.pods, grant.updated_at = "active", pods, now
        if self._deps.metrics is not None:
            self._deps.metrics.grant_created(cluster.name, grant.scanner)
        # A new expiry the reaper may need to wake up earlier for.
        self._deps.wake_reaper(grant.expires_at)
        # Logged by its `activated` audit record (with the pods): no second line for it.
        return grant

    async def _abandon(
        self, grant: Grant, cluster: ClusterClient, exc: BaseException, *, actor: str
    ) -> None:
        error = _describe(exc)
        cleaned = await self._delete_objects(grant, cluster)
        now = utcnow()
        async with self._deps.db.session() as session:
            failed = await repository.fail_provisioning(session, grant.id, error=error, now=now)
            if failed:
                await repository.add_event(
                    session,
                    grant.id,
                    at=now,
                    actor=actor,
                    type="failed",
                    detail={"error": error, "cleaned_up": cleaned},
                )
        if failed and self._deps.metrics is not None:
            self._deps.metrics.grant_failed(cluster.name, grant.scanner)
        log.info("grant %s failed: %s", grant.id, error)

    async def _delete_objects(self, grant: Grant, cluster: ClusterClient) -> bool:
        try:
            await cluster.delete_grant_objects(grant.id, grant.namespace)
        except KubeError as exc:
            # The grant is not live any more, so the reaper's sweep removes what is left.
            log.warning("grant %s: cleanup deferred to the reaper's sweep: %s", grant.id, exc)
            return False
        return True


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for `task` to finish, whatever its outcome, and mark its error as retrieved (so
    asyncio does not log it as lost): the caller is already reporting another error."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ScangateError):
        return exc.detail
    if isinstance(exc, KubeError):
        return str(exc)  # safe by contract: no tokens, no raw bodies
    return f"internal error ({type(exc).__name__})"

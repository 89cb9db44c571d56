"""The grant lifecycle: every change of a grant's state a caller asks for, built once per app
(`open_services`).

    provision_grant     request -> provisioning -> active      (or -> failed | rejected)
                        request -> pending_approval             (a policy with `approval`)
    provision_approved  provisioning (the Nth approval, `approvals.py`) -> active
    renew_grant         active: a later expires_at
    revoke_grant        provisioning | active -> revoking -> revoked   (the caller)
                        pending_approval -> revoked                    (the request withdrawn)

Grants end through `GrantEnder` (`ending.py`), which this revocation shares with the reaper's
expiry, retry, policy re-check and stale-provisioning batches. The allowed transitions are
`app.db.models.TRANSITIONS`; each is a conditional UPDATE in the repository. Units of work
follow the transaction rule (docs/ARCHITECTURE.md): each step opens a short one and commits it;
none is open during a cluster call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.auth import Principal
from app.db.engine import Database
from app.db.models import Grant, GrantStatus
from app.errors import ScangateError
from app.grants import approval_queries, repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.counted_inserts import insert_counted, insert_pending
from app.grants.deletion import delete_grant_objects
from app.grants.ending import GrantEnder
from app.grants.errors import (
    ClusterError,
    GrantNotActive,
    LifetimeCapReached,
    ProvisioningAbandoned,
    UnknownCluster,
    cluster_problem,
)
from app.grants.group_commit import GrantWriter
from app.grants.ids import new_grant_id
from app.grants.policy_limits import check_pod_count, check_reason, check_ttl
from app.grants.policy_recheck import GrantUse, recheck_grant
from app.grants.provisioning import (
    ResolvedPods,
    create_grant_objects,
    describe_failure,
    pod_request_for,
    resolve_target_pods,
    service_account_username,
    settle,
)
from app.grants.repository import ClaimedGrant, NewEvent
from app.grants.revocation import lease_until
from app.grants.schemas import GrantCreate
from app.grants.visibility import effective_status, own_grant, visible_grant
from app.kube.clusters import ClusterClient, ClusterRegistry
from app.kube.errors import KubeError
from app.kube.models import GrantTarget
from app.observability.metrics import ScangateMetrics
from app.reload import LiveConfig
from app.settings_sections import PolicyConfig

log = logging.getLogger(__name__)


def no_reaper(_due: datetime) -> None:
    """The `wake_reaper` where no reaper runs in this process (tests, the CLI)."""


class GrantLifecycle:
    def __init__(
        self,
        *,
        config: LiveConfig,
        db: Database,
        clusters: ClusterRegistry,
        writer: GrantWriter,
        ender: GrantEnder,
        metrics: ScangateMetrics | None,
        wake_reaper: Callable[[datetime], None] = no_reaper,
    ) -> None:
        # The configuration in force, read at each use: a reload swaps it (app/reload), and a
        # request reads the generation it pinned.
        self._config = config
        self._db = db
        self._clusters = clusters
        # Writes the rows and events of grant creation (group commit: `group_commit.py`).
        self._writer = writer
        self._ender = ender
        self._metrics = metrics
        # Tells the reaper about a new due moment.
        self._wake_reaper = wake_reaper

    # -- provision ----------------------------------------------------------------------------

    async def provision_grant(self, principal: Principal, request: GrantCreate) -> Grant:
        """Crash safety rests on one ordering rule: the `provisioning` row is committed before
        the first cluster call that creates anything, so whatever happens afterwards, the
        database knows the grant may have objects and either this code or the reaper removes
        them. The pod lookup only reads, so it runs while the row commits.

        Under a policy with `approval`, the row is committed `pending_approval` instead and
        nothing is asked of the cluster: the Nth approval provisions it (`provision_approved`).
        """
        cluster_name = request.cluster or self._config.settings.clusters[0].name
        try:
            cluster = self._clusters.get(cluster_name)
        except KeyError:
            raise UnknownCluster(
                f"cluster {cluster_name!r} is not configured", field="body.cluster"
            ) from None
        policy = self._config.policies.authorize(
            principal, cluster=cluster_name, namespace=request.namespace, scanner=request.scanner
        )
        ttl = (
            check_ttl(request.ttl_seconds, policy)
            if request.ttl_seconds is not None
            # The configured default, but never more than the policy allows.
            else min(self._config.settings.default_ttl_seconds, policy.max_ttl_seconds)
        )
        check_reason(request.reason, policy)
        if request.pods is not None:
            # Refused before anything is recorded: the request alone says it is too big.
            check_pod_count(len(request.pods), policy.max_pods, field="body.pods")
        now = utcnow()
        grant_id = new_grant_id()
        grant = Grant(
            id=grant_id, status=GrantStatus.PROVISIONING, cluster=cluster.name,
            namespace=request.namespace, scanner=request.scanner, pods=list(request.pods or []),
            selector=request.selector, containers=request.containers, requester=principal.id,
            policy=policy.name, reason=request.reason,
            service_account=service_account_username(cluster.grants_namespace, grant_id),
            created_at=now, updated_at=now, expires_at=now + timedelta(seconds=ttl), attempts=0,
            ttl_seconds=ttl,
        )  # fmt: skip
        detail = {
            "cluster": grant.cluster, "namespace": grant.namespace, "scanner": grant.scanner,
            "pods": grant.pods, "selector": grant.selector, "containers": grant.containers,
            "ttl_seconds": ttl, "policy": policy.name, "reason": request.reason,
            # The OIDC claims the policy required, as the token carried them: why this CI job
            # (repository, ref, environment...) was allowed.
            "claims": self._config.policies.matched_claims(principal, policy),
        }  # fmt: skip
        if policy.approval is not None:
            deadline = await insert_pending(self._db, grant, policy, policy.approval, detail)
            self._wake_reaper(deadline)
            return grant
        lookup = asyncio.create_task(
            resolve_target_pods(
                cluster, pod_request_for(grant, policy, self._config.settings.sidecar_container)
            )
        )
        try:
            if policy.max_active_grants is None:
                await self._writer.insert(grant, actor=principal.id, detail=detail)
            else:
                # The count and the insert share a transaction (no group commit for this one).
                await insert_counted(
                    self._db, grant, policy, [NewEvent(grant.id, "requested", detail)]
                )
        except BaseException:
            lookup.cancel()
            await settle(lookup)
            raise
        # If this request dies now, the reaper cleans up once the provisioning timeout passes.
        timeout = timedelta(seconds=self._config.settings.reaper.provisioning_timeout_seconds)
        self._wake_reaper(now + timeout)
        return await self._create_and_activate(grant, cluster, lookup, actor=principal.id)

    async def provision_approved(self, grant: Grant, policy: PolicyConfig, *, actor: str) -> Grant:
        """Provision a grant its Nth approval moved to `provisioning` (committed by the
        approval: `approvals.py`), as a request without approval is provisioned once its row
        exists. `policy` is the one that allows it today (re-checked by the approval)."""
        timeout = timedelta(seconds=self._config.settings.reaper.provisioning_timeout_seconds)
        self._wake_reaper(utcnow() + timeout)
        try:
            cluster = self._clusters.get(grant.cluster)
        except KeyError as exc:
            error = ClusterError(f"cluster {grant.cluster!r} is no longer configured")
            await self._abandon(grant, error, actor=actor)
            raise error from exc
        # The annotations' expiry; the grant's own is set when it becomes active.
        grant.expires_at = utcnow() + timedelta(seconds=grant.ttl_seconds or 0)
        lookup = asyncio.create_task(
            resolve_target_pods(
                cluster, pod_request_for(grant, policy, self._config.settings.sidecar_container)
            )
        )
        return await self._create_and_activate(grant, cluster, lookup, actor=actor)

    async def _create_and_activate(
        self,
        grant: Grant,
        cluster: ClusterClient,
        lookup: asyncio.Task[ResolvedPods],
        *,
        actor: str,
    ) -> Grant:
        """The part after the `provisioning` row is committed: the objects (pods resolved by
        `lookup`), then activation; on any failure, what was created is deleted and the grant
        ends `rejected` or `failed`."""
        target = GrantTarget(
            grant_id=grant.id, namespace=grant.namespace, scanner=grant.scanner,
            requester=grant.requester, expires_at=grant.expires_at,
        )  # fmt: skip
        try:
            resolved = await create_grant_objects(cluster, target, lookup)
        except ScangateError as exc:
            await self._abandon(grant, exc, actor=actor)
            raise
        except KubeError as exc:
            await self._abandon(grant, exc, actor=actor)
            raise cluster_problem(exc) from exc
        except Exception as exc:
            # A bug: still never leave objects behind. Re-raised untranslated (a 500).
            await self._abandon(grant, exc, actor=actor)
            raise
        now = utcnow()
        pods = resolved.names
        approved = grant.approvals_required is not None
        # An approved grant's TTL counts from its activation (now); any other's from its
        # request, a moment ago.
        expires_at = (
            now + timedelta(seconds=grant.ttl_seconds or 0) if approved else grant.expires_at
        )
        detail = {
            "pods": pods, "expires_at": format_rfc3339(expires_at), "exposure": resolved.exposure,
        }  # fmt: skip
        if approved:
            activated = await self._activate_approved(
                grant.id, resolved, now, expires_at, actor, detail
            )
        else:
            activated = await self._writer.activate(
                grant.id, pods=pods, exposure=resolved.exposure, now=now, actor=actor,
                detail=detail,
            )  # fmt: skip
        if not activated:
            # The reaper declared it stale, or it was revoked meanwhile: whoever did that owns
            # the end state; this request only makes sure nothing it created survives.
            await delete_grant_objects(self._clusters, grant)
            raise ProvisioningAbandoned(
                f"grant {grant.id!r} was revoked or timed out while it was being provisioned"
            )
        grant.status, grant.pods, grant.updated_at = GrantStatus.ACTIVE, pods, now
        grant.exposure, grant.expires_at = resolved.exposure, expires_at
        if approved:
            grant.activated_at = now
        if self._metrics is not None:
            self._metrics.grant_created(cluster.name, grant.scanner)
        self._wake_reaper(grant.expires_at)
        return grant

    async def _activate_approved(
        self,
        grant_id: str,
        resolved: ResolvedPods,
        now: datetime,
        expires_at: datetime,
        actor: str,
        detail: dict[str, Any],
    ) -> bool:
        # Approvals are rare and off the hot path: a unit of work of its own, not the writer.
        async with self._db.session() as session:
            activated = await approval_queries.activate_approved(
                session, grant_id, pods=resolved.names, exposure=resolved.exposure, now=now,
                expires_at=expires_at,
            )  # fmt: skip
            if activated:
                await repository.add_event(
                    session, grant_id, at=now, actor=actor, type="activated", detail=detail
                )
        return activated

    async def _abandon(self, grant: Grant, exc: BaseException, *, actor: str) -> None:
        error = describe_failure(exc)
        # A refusal of the request's own content (no such pod, no match, a missing sidecar)
        # is the caller's mistake, not a failure an operator should look at.
        rejected = isinstance(exc, ScangateError) and exc.status < 500
        status = GrantStatus.REJECTED if rejected else GrantStatus.FAILED
        cleanup_error = await delete_grant_objects(self._clusters, grant)
        if cleanup_error is not None:
            # The grant is not live any more, so the reaper's sweep removes what is left.
            log.warning("grant %s: cleanup deferred to the sweep: %s", grant.id, cleanup_error)
        now = utcnow()
        async with self._db.session() as session:
            ended = await repository.end_provisioning(
                session, grant.id, status=status, error=error, now=now
            )
            if ended:
                await repository.add_event(
                    session, grant.id, at=now, actor=actor, type=status.value,
                    detail={"error": error, "cleaned_up": cleanup_error is None},
                )  # fmt: skip
        if ended and status is GrantStatus.FAILED and self._metrics is not None:
            self._metrics.grant_failed(grant.cluster, grant.scanner)
        log.info("grant %s %s: %s", grant.id, status.value, error)

    # -- renew --------------------------------------------------------------------------------

    async def renew_grant(self, principal: Principal, grant_id: str, ttl_seconds: int) -> Grant:
        """Move the expiry to now + ttl_seconds, never past its start (created_at, or an
        approved grant's activated_at) + the policy's lifetime cap, and never earlier than it
        already is. The policy is re-evaluated: a renewal is a new decision, made under today's
        configuration."""
        async with self._db.session() as session:
            grant = await own_grant(session, principal, grant_id)
            now = utcnow()
            if grant.status is not GrantStatus.ACTIVE or grant.expires_at <= now:
                raise GrantNotActive(grant_id, effective_status(grant, now))
            policy = recheck_grant(
                self._config.policies,
                principal,
                GrantUse(grant.id, grant.requester, grant.cluster, grant.namespace, grant.scanner),
            )
            check_ttl(ttl_seconds, policy)
            # An approved grant's life starts at its activation, not at its request.
            started = grant.activated_at or grant.created_at
            cap = started + timedelta(seconds=policy.lifetime_cap_seconds)
            wanted = now + timedelta(seconds=ttl_seconds)
            new_expiry = min(wanted, cap)
            if new_expiry <= grant.expires_at:
                if cap <= grant.expires_at:
                    raise LifetimeCapReached(
                        f"grant {grant_id!r} already lasts its policy's maximum lifetime "
                        f"({policy.lifetime_cap_seconds} s); it expires at "
                        f"{format_rfc3339(grant.expires_at)}",
                        expires_at=format_rfc3339(grant.expires_at),
                    )
                return grant  # it already lasts longer than asked: nothing to do
            extended = await repository.extend_expiry(
                session, grant_id, expires_at=new_expiry, now=now
            )
            if not extended:
                # The reaper claimed it between our read and this update.
                raise GrantNotActive(grant_id, GrantStatus.EXPIRED)
            await repository.add_event(
                session, grant_id, at=now, actor=principal.id, type="renewed",
                detail={
                    "ttl_seconds": ttl_seconds,
                    "previous_expires_at": format_rfc3339(grant.expires_at),
                    "expires_at": format_rfc3339(new_expiry), "capped": new_expiry < wanted,
                },
            )  # fmt: skip
        grant.expires_at, grant.updated_at = new_expiry, now
        return grant

    # -- revoke ---------------------------------------------------------------------------------

    async def revoke_grant(self, principal: Principal, grant_id: str, reason: str | None) -> Grant:
        """Idempotent. Returns the grant afterwards: `revoked` when the cluster objects are gone,
        still `revoking` when the cluster failed (the reaper retries), or unchanged when the
        grant had already ended."""
        now = utcnow()
        async with self._db.session() as session:
            grant = await visible_grant(session, principal, grant_id)
            claim: ClaimedGrant | None = None
            status = grant.status
            if status is GrantStatus.PENDING_APPROVAL:
                # Nothing exists in the cluster yet: withdrawing the request ends it.
                if await approval_queries.end_pending(
                    session, grant_id, status=GrantStatus.REVOKED, now=now
                ):
                    await repository.add_event(
                        session, grant_id, at=now, actor=principal.id, type="revoked",
                        detail={"reason": reason, "pending_approval": True},
                    )  # fmt: skip
                else:
                    # Decided meanwhile. If its Nth approval won, it is being provisioned:
                    # revoke that (the claim below matches nothing if it was denied instead).
                    status = GrantStatus.PROVISIONING
            if status in (GrantStatus.PROVISIONING, GrantStatus.ACTIVE):
                claim = await repository.claim_for_revocation(
                    session, grant_id, now=now, lease_until=lease_until(now)
                )
                if claim is not None:
                    await repository.add_event(
                        session, grant_id, at=now, actor=principal.id, type="revoking",
                        detail={"reason": reason, "end_status": GrantStatus.REVOKED.value},
                    )  # fmt: skip
            elif status is GrantStatus.REVOKING:
                # A caller retrying a revocation the cluster refused earlier: try again now
                # rather than wait for the reaper's backoff, unless another attempt is running.
                claim = await repository.claim_revocation_attempt(
                    session, grant_id, now=now, lease_until=lease_until(now)
                )
        if claim is not None:
            [outcome] = await self._ender.end_claimed([claim], actor=principal.id)
            if outcome == GrantStatus.REVOKING:
                # A deferred revocation has a retry time the reaper should wake up for.
                self._wake_reaper(utcnow())
        async with self._db.session() as session:
            return await visible_grant(session, principal, grant_id)

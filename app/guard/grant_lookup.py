"""The guard's database side: the grant a request's identity belongs to, and the audit events
of a decision. Reads and writes go through `app.grants.repository` (the only SQL owner).

A decision's events are written in the same short transaction as the read, and the response
is sent only once it has committed: an exec that was admitted always has its event.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.grants import repository
from app.grants.clock import utcnow
from app.guard.decisions import Decision, GrantView


async def load_grant(session: AsyncSession, grant_id: str) -> GrantView | None:
    grant = await repository.get_grant(session, grant_id)
    if grant is None:
        return None
    debug_containers: set[tuple[str, str]] = set()
    if grant.containers is not None and grant.scanner == "debug":
        # A debug grant limited to some containers may still attach to the debug containers
        # it was allowed to add: its own earlier decisions say which those are.
        for event in await repository.list_events(session, grant_id):
            detail = event.detail
            if event.type == "debug_container" and detail.get("verdict") == "allowed":
                pod, container = detail.get("pod"), detail.get("container")
                if isinstance(pod, str) and isinstance(container, str):
                    debug_containers.add((pod, container))
    return GrantView(
        id=grant.id,
        status=grant.status,
        cluster=grant.cluster,
        namespace=grant.namespace,
        scanner=grant.scanner,
        pods=tuple(grant.pods),
        containers=tuple(grant.containers) if grant.containers is not None else None,
        service_account=grant.service_account,
        policy=grant.policy,
        expires_at=grant.expires_at,
        debug_containers=frozenset(debug_containers),
    )


async def record_decision(
    session: AsyncSession, grant_id: str, decision: Decision, *, actor: str
) -> None:
    now = utcnow()
    for record in decision.records:
        await repository.add_event(
            session, grant_id, at=now, actor=actor, type=record.type, detail=record.detail
        )

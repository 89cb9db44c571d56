"""The guard's database side: the grants a batch of requests' identities belong to, and the
audit events of their decisions. Reads and writes go through `app.grants.repository` (the only
SQL owner).

The decisions' events are written in the same short transaction as the read, and a response
is sent only once it has committed (`decision_batch.py`): an exec that was admitted always has
its event.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.grants import repository
from app.guard.decisions import Decision, GrantView


async def load_grants(session: AsyncSession, grant_ids: Collection[str]) -> dict[str, GrantView]:
    """The grants of `grant_ids` that exist, by id (one query for all of them)."""
    views: dict[str, GrantView] = {}
    for grant in await repository.get_guard_rows(session, grant_ids):
        views[grant.id] = await _view(session, grant)
    return views


async def _view(session: AsyncSession, grant: repository.GuardRow) -> GrantView:
    debug_containers: set[tuple[str, str]] = set()
    if grant.containers is not None and grant.scanner == "debug":
        # A debug grant limited to some containers may still attach to the debug containers
        # it was allowed to add: its own earlier decisions say which those are.
        for event in await repository.list_events(session, grant.id):
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


async def record_decisions(
    session: AsyncSession, decisions: Sequence[tuple[str, str, Decision]], *, at: datetime
) -> None:
    """The audit events of `decisions` ((grant id, actor, decision) each), in the session's
    transaction: one multi-row INSERT per actor (in practice one per grant identity)."""
    by_actor: dict[str, list[repository.NewEvent]] = {}
    for grant_id, actor, decision in decisions:
        events = by_actor.setdefault(actor, [])
        events.extend(repository.NewEvent(grant_id, r.type, r.detail) for r in decision.records)
    for actor, events in by_actor.items():
        await repository.add_events(session, events, at=at, actor=actor)

"""The grant writer's group commit against real databases (SQLite and PostgreSQL): concurrent
writes share transactions, each write keeps its own values and outcome, a failing write fails
only its own request, and an unavailable database fails a batch at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db import engine as engine_module
from app.db.engine import Database
from app.db.models import GrantEvent, GrantStatus
from app.grants import repository
from app.grants.clock import utcnow
from app.grants.group_commit import GrantWriter
from tests.support.grant_rows import grant_row

pytestmark = pytest.mark.anyio


def count_event_writes(db: Database) -> list[int]:
    """A one-element list holding the number of statements that have written audit events
    since (on PostgreSQL the statement that writes the grants writes their events too)."""
    statements = [0]

    def before_execute(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "INSERT INTO grant_events" in sql:
            statements[0] += 1

    for engine in (db.engine, db.autocommit_engine):
        if engine is not None:
            event.listen(engine.sync_engine, "before_cursor_execute", before_execute)
    return statements


async def events_of(db: Database, grant_id: str) -> list[GrantEvent]:
    async with db.session() as session:
        rows = await session.execute(select(GrantEvent).where(GrantEvent.grant_id == grant_id))
        return list(rows.scalars())


async def test_concurrent_inserts_share_a_transaction_and_keep_their_own_values(
    db: Database,
) -> None:
    writer = GrantWriter(db)
    grants = [grant_row(status="provisioning", pods=[f"web-{i}"]) for i in range(40)]
    statements = count_event_writes(db)
    await asyncio.gather(
        *(writer.insert(g, actor=f"apikey:user{i}", detail={"n": i}) for i, g in enumerate(grants))
    )
    # All 40 queued while the first write was being carried out: far fewer than 40 statements.
    assert statements[0] <= 2
    async with db.session() as session:
        for i, grant in enumerate(grants):
            stored = await repository.get_grant(session, grant.id)
            assert stored is not None
            assert (stored.status, stored.pods, stored.requester) == (
                "provisioning", [f"web-{i}"], "apikey:alice",
            )  # fmt: skip
    for i, grant in enumerate(grants):
        [requested] = await events_of(db, grant.id)
        assert (requested.type, requested.actor, requested.detail) == (
            "requested", f"apikey:user{i}", {"n": i},
        )  # fmt: skip
        assert requested.at == grant.created_at


async def test_a_lone_write_is_carried_out_at_once(db: Database) -> None:
    writer = GrantWriter(db)
    statements = count_event_writes(db)
    await writer.insert(grant_row(status="provisioning"), actor="apikey:alice", detail={})
    assert statements[0] == 1


async def test_batched_activations_set_each_grants_pods_and_refuse_one_that_left_provisioning(
    db: Database,
) -> None:
    writer = GrantWriter(db)
    grants = [grant_row(status="provisioning") for _ in range(4)]
    for grant in grants:
        await writer.insert(grant, actor="apikey:alice", detail={})
    async with db.session() as session:
        assert await repository.end_provisioning(
            session, grants[3].id, status=GrantStatus.FAILED, error="timed out", now=utcnow()
        )
    moments = [utcnow() for _ in grants]
    statements = count_event_writes(db)
    outcomes = await asyncio.gather(
        *(
            writer.activate(
                g.id,
                pods=[f"pod-{i}", "shared"],
                now=moments[i],
                actor="apikey:alice",
                detail={"i": i},
            )
            for i, g in enumerate(grants)
        )
    )
    assert outcomes == [True, True, True, False]
    assert statements[0] <= 2
    async with db.session() as session:
        for i, grant in enumerate(grants[:3]):
            stored = await repository.get_grant(session, grant.id)
            assert stored is not None
            assert (stored.status, stored.pods, stored.updated_at) == (
                "active", [f"pod-{i}", "shared"], moments[i],
            )  # fmt: skip
        refused = await repository.get_grant(session, grants[3].id)
        assert refused is not None
        assert (refused.status, refused.pods) == ("failed", grants[3].pods)
    for i, grant in enumerate(grants[:3]):
        assert [(e.type, e.detail) for e in await events_of(db, grant.id)] == [
            ("requested", {}), ("activated", {"i": i}),
        ]  # fmt: skip
    assert [e.type for e in await events_of(db, grants[3].id)] == ["requested"]


async def test_a_lone_activation_loses_to_a_grant_that_was_failed_meanwhile(
    db: Database,
) -> None:
    writer = GrantWriter(db)
    grant = grant_row(status="provisioning")
    await writer.insert(grant, actor="apikey:alice", detail={})
    now = utcnow()
    async with db.session() as session:
        assert await repository.end_provisioning(
            session, grant.id, status=GrantStatus.FAILED, error="boom", now=now
        )
    assert not await writer.activate(
        grant.id, pods=["web-0"], now=utcnow(), actor="apikey:alice", detail={}
    )
    async with db.session() as session:
        stored = await repository.get_grant(session, grant.id)
    assert stored is not None
    assert (stored.status, stored.last_error, stored.ended_at) == ("failed", "boom", now)
    assert [e.type for e in await events_of(db, grant.id)] == ["requested"]


async def test_a_write_that_cannot_succeed_fails_only_its_own_request(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = GrantWriter(db)
    taken = grant_row(status="provisioning")
    await writer.insert(taken, actor="apikey:alice", detail={})
    duplicate = grant_row(id=taken.id, status="provisioning")
    others = [grant_row(status="provisioning") for _ in range(5)]
    writes = [writer.insert(g, actor="apikey:alice", detail={}) for g in [*others[:2], duplicate]]
    writes += [writer.insert(g, actor="apikey:alice", detail={}) for g in others[2:]]
    with caplog.at_level(logging.WARNING, logger="app.grants.group_commit"):
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert [type(o) for o in outcomes] == [type(None)] * 2 + [IntegrityError] + [type(None)] * 3
    assert "retrying them one by one" in caplog.text
    for grant in others:
        assert [e.type for e in await events_of(db, grant.id)] == ["requested"]
    # The duplicate wrote nothing: the first grant still has its one event.
    assert len(await events_of(db, taken.id)) == 1


async def test_an_unavailable_database_fails_the_whole_batch_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    db = Database("postgresql://scangate@127.0.0.1:1/scangate")
    writer = GrantWriter(db)
    try:
        with caplog.at_level(logging.WARNING, logger="app.grants.group_commit"):
            outcomes = await asyncio.gather(
                *(
                    writer.insert(grant_row(status="provisioning"), actor="a", detail={})
                    for _ in range(10)
                ),
                return_exceptions=True,
            )
    finally:
        await db.dispose()
    assert all(isinstance(o, OperationalError) for o in outcomes)
    # Not retried one by one: each write would only have waited for the same failure again.
    assert "one by one" not in caplog.text


async def test_a_write_cancelled_before_its_transaction_started_is_not_written(
    db: Database,
) -> None:
    writer = GrantWriter(db)
    kept, dropped = grant_row(status="provisioning"), grant_row(status="provisioning")
    first = asyncio.create_task(writer.insert(kept, actor="a", detail={}))
    second = asyncio.create_task(writer.insert(dropped, actor="a", detail={}))
    await asyncio.sleep(0)  # both have queued their writes; the writer has not run yet
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await writer.drain()
    async with db.session() as session:
        assert await repository.get_grant(session, kept.id) is not None
        assert await repository.get_grant(session, dropped.id) is None


async def test_a_writer_connection_idle_long_enough_to_be_pinged_still_writes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the writer's own autocommit connections are pinged after sitting idle, as
    # the main pool's are; the ping must leave them fit for a statement outside a transaction.
    monkeypatch.setattr(engine_module, "_PING_AFTER_IDLE_SECONDS", 0.05)
    writer = GrantWriter(db)
    first, second = grant_row(status="provisioning"), grant_row(status="provisioning")
    await writer.insert(first, actor="a", detail={})
    await asyncio.sleep(0.2)
    await writer.insert(second, actor="a", detail={})
    assert [e.type for e in await events_of(db, second.id)] == ["requested"]

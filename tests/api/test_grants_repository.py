"""The repository against real databases: conditional claims decide races, times stay UTC,
pagination is by id. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, timedelta

import pytest

from app.db.engine import Database
from app.grants import reaper_queries, repository
from app.grants.clock import utcnow
from tests.support.grant_rows import grant_row, insert_grants

pytestmark = pytest.mark.anyio


async def test_times_come_back_timezone_aware_utc(db: Database) -> None:
    grant = grant_row()
    await insert_grants(db, grant)
    async with db.session() as session:
        stored = await repository.get_grant(session, grant.id)
    assert stored is not None
    assert stored.created_at == grant.created_at
    assert stored.expires_at.tzinfo is not None
    assert stored.expires_at.utcoffset() == timedelta(0)
    assert stored.expires_at == grant.expires_at.astimezone(UTC)


async def test_revocation_is_claimed_once_and_finished_once(db: Database) -> None:
    grant = grant_row()
    await insert_grants(db, grant)
    now = utcnow()
    async with db.session() as session:
        first = await repository.claim_for_revocation(
            session, grant.id, now=now, lease_until=now + timedelta(seconds=30)
        )
        second = await repository.claim_for_revocation(
            session, grant.id, now=now, lease_until=now + timedelta(seconds=30)
        )
    assert first is not None
    assert (first.id, first.end_status, first.attempts) == (grant.id, "revoked", 1)
    assert second is None
    async with db.session() as session:
        finished = await repository.finish_revocations(session, [grant.id], now=now)
        assert finished == {grant.id: "revoked"}
        assert await repository.finish_revocations(session, [grant.id], now=now) == {}


async def test_racing_expiry_claims_split_the_due_grants_without_overlap(
    migrated_url: str,
) -> None:
    # Two engines stand in for two replicas: each claim is its own connection and transaction.
    replicas = [Database(migrated_url), Database(migrated_url)]
    try:
        now = utcnow()
        due = [grant_row(expires_at=now - timedelta(seconds=1)) for _ in range(40)]
        later = [grant_row(expires_at=now + timedelta(hours=1)) for _ in range(5)]
        ended = [grant_row(status="revoked", expires_at=now - timedelta(seconds=5))]
        await insert_grants(replicas[0], *due, *later, *ended)

        async def claim(db: Database) -> list[str]:
            claimed: list[str] = []
            while True:
                async with db.session() as session:
                    batch = await reaper_queries.claim_expired(
                        session, now=utcnow(), lease_until=utcnow() + timedelta(seconds=30), limit=7
                    )
                claimed += [c.id for c in batch]
                if not batch:
                    return claimed

        first, second = await asyncio.gather(claim(replicas[0]), claim(replicas[1]))
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted(g.id for g in due)
        async with replicas[0].session() as session:
            for grant in due:
                stored = await repository.get_grant(session, grant.id)
                assert stored is not None
                assert (stored.status, stored.end_status) == ("revoking", "expired")
    finally:
        for replica in replicas:
            await replica.dispose()


async def test_due_revocations_respect_the_lease(db: Database) -> None:
    now = utcnow()
    leased = grant_row(status="revoking", end_status="revoked", attempts=1,
                       next_attempt_at=now + timedelta(seconds=30))  # fmt: skip
    due = grant_row(status="revoking", end_status="expired", attempts=2,
                    next_attempt_at=now - timedelta(seconds=1))  # fmt: skip
    await insert_grants(db, leased, due)
    async with db.session() as session:
        claimed = await reaper_queries.claim_due_revocations(
            session, now=now, lease_until=now + timedelta(seconds=30), limit=10
        )
        again = await reaper_queries.claim_due_revocations(
            session, now=now, lease_until=now + timedelta(seconds=30), limit=10
        )
    assert [(c.id, c.attempts, c.end_status) for c in claimed] == [(due.id, 3, "expired")]
    assert again == []


async def test_stale_provisioning_is_failed_and_fresh_left_alone(db: Database) -> None:
    now = utcnow()
    stale = grant_row(status="provisioning", created_at=now - timedelta(minutes=5))
    fresh = grant_row(status="provisioning", created_at=now)
    await insert_grants(db, stale, fresh)
    async with db.session() as session:
        failed = await reaper_queries.fail_stale_provisioning(
            session, entered_before=now - timedelta(minutes=2), now=now, error="timeout", limit=10
        )
    assert [g.id for g in failed] == [stale.id]
    async with db.session() as session:
        assert await reaper_queries.live_grant_ids(session, {stale.id, fresh.id, "unknown"}) == {
            fresh.id
        }


async def test_renewal_loses_to_expiry(db: Database) -> None:
    now = utcnow()
    expired = grant_row(expires_at=now - timedelta(seconds=1))
    await insert_grants(db, expired)
    async with db.session() as session:
        assert not await repository.extend_expiry(
            session, expired.id, expires_at=now + timedelta(minutes=5), now=now
        )


async def test_listing_pages_newest_first_by_cursor(db: Database) -> None:
    mine = [grant_row() for _ in range(7)]
    theirs = [grant_row(requester="apikey:bob") for _ in range(3)]
    await insert_grants(db, *mine, *theirs)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        async with db.session() as session:
            rows = await repository.list_grants(
                session, requester="apikey:alice", status=None, namespace=None,
                cluster=None, cursor=cursor, limit=3,
            )  # fmt: skip
        page = rows[:3]
        seen += [g.id for g in page]
        pages += 1
        if len(rows) <= 3:
            break
        cursor = page[-1].id
    assert pages == 3
    assert seen == sorted((g.id for g in mine), reverse=True)


async def test_next_due_reports_the_earliest_work(db: Database) -> None:
    now = utcnow()
    soon, late = now + timedelta(seconds=5), now + timedelta(hours=1)
    await insert_grants(
        db,
        grant_row(expires_at=late),
        grant_row(expires_at=soon),
        grant_row(status="revoked", expires_at=now - timedelta(hours=1)),
        grant_row(status="revoking", next_attempt_at=now + timedelta(seconds=9)),
    )
    async with db.session() as session:
        due = await reaper_queries.next_due(session)
    assert (due.expiry, due.retry, due.oldest_provisioning) == (
        soon,
        now + timedelta(seconds=9),
        None,
    )


async def test_batched_events_and_finishes_match_their_grants(db: Database) -> None:
    grants = [grant_row(status="revoking", end_status="expired") for _ in range(3)]
    done_elsewhere = grant_row(status="expired")
    await insert_grants(db, *grants, done_elsewhere)
    now = utcnow()
    async with db.session() as session:
        await repository.add_events(
            session,
            [repository.NewEvent(g.id, "revoking", {"n": i}) for i, g in enumerate(grants)],
            at=now,
            actor="scangate:reaper",
        )
        finished = await repository.finish_revocations(
            session, [g.id for g in grants] + [done_elsewhere.id], now=now
        )
    assert finished == {g.id: "expired" for g in grants}  # not the one already ended
    async with db.session() as session:
        for i, grant in enumerate(grants):
            [event] = await repository.list_events(session, grant.id)
            assert (event.type, event.detail) == ("revoking", {"n": i})
            stored = await repository.get_grant(session, grant.id)
            assert stored is not None
            assert (stored.status, stored.ended_at) == ("expired", now)


async def test_a_batch_of_events_is_logged_with_each_events_own_id(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    grants = [grant_row() for _ in range(3)]
    await insert_grants(db, *grants)
    events = [repository.NewEvent(grants[i % 3].id, "exec", {"n": i}) for i in range(40)]
    with caplog.at_level(logging.INFO, logger="scangate.audit"):
        async with db.session() as session:
            await repository.add_events(session, events, at=utcnow(), actor="guard")
    logged = [r.audit for r in caplog.records if r.name == "scangate.audit"]  # type: ignore[attr-defined]
    assert [(a["grant_id"], a["detail"]) for a in logged] == [
        (e.grant_id, e.detail) for e in events
    ]
    async with db.session() as session:
        stored = {
            event.id: (grant.id, event.detail)
            for grant in grants
            for event in await repository.list_events(session, grant.id)
        }
    assert {a["event_id"]: (a["grant_id"], a["detail"]) for a in logged} == stored

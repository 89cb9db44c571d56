"""Reviews arriving together share one transaction (app/guard/decision_batch.py), on SQLite and
PostgreSQL: each is still judged on its own grant as the database holds it when the review
arrives, recorded exactly once (dry runs never), and answered only after its record exists.
Also the guard listener's plain HTTP surface (health, unknown paths, methods, sizes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from app.db.engine import Database
from app.db.models import Grant
from app.grants import repository
from tests.guard.admission_reviews import connect_review, grant_username
from tests.support.guard import RunningGuard

pytestmark = pytest.mark.anyio


async def _event_uids(guard: RunningGuard, grant_id: str) -> list[tuple[str, str, str]]:
    async with guard.db.session() as session:
        events = await repository.list_events(session, grant_id)
    return [(e.type, e.detail["verdict"], e.detail["request_uid"]) for e in events]


async def test_concurrent_reviews_are_each_judged_on_their_own_grant_and_recorded_once(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    active: Grant = await add_grant(scanner="exec", containers=["app"])
    revoked: Grant = await add_grant(scanner="exec", status="revoked")
    reviews: list[tuple[dict[str, Any], bool]] = []
    for i in range(12):
        reviews.append((connect_review("exec", active.service_account), True))
        reviews.append((connect_review("exec", revoked.service_account), False))
        # Another container than the grant's: refused, and recorded as refused.
        reviews.append((connect_review("exec", active.service_account, container="sidecar"), False))
        if i % 4 == 0:
            dry_run = connect_review("exec", active.service_account)
            dry_run["request"]["dryRun"] = True
            reviews.append((dry_run, True))
            unknown = connect_review("exec", grant_username("01jbq3z5ksxn2m8d7c4v6w9e0r"))
            reviews.append((unknown, False))

    responses = await asyncio.gather(*(guard.review(review) for review, _ in reviews))

    for (review, allowed), response in zip(reviews, responses, strict=True):
        assert response.status_code == 200, response.text
        answer = response.json()["response"]
        assert answer["uid"] == review["request"]["uid"]
        assert answer["allowed"] is allowed, answer
    expected_active = sorted(
        ("exec", "allowed" if allowed else "denied", review["request"]["uid"])
        for review, allowed in reviews
        if review["request"]["userInfo"]["username"] == active.service_account
        and not review["request"]["dryRun"]
    )
    assert sorted(await _event_uids(guard, active.id)) == expected_active
    expected_revoked = sorted(
        ("exec", "denied", review["request"]["uid"])
        for review, _ in reviews
        if review["request"]["userInfo"]["username"] == revoked.service_account
    )
    assert sorted(await _event_uids(guard, revoked.id)) == expected_revoked


async def test_a_revoke_by_another_replica_is_refused_at_the_next_review(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    grant: Grant = await add_grant(scanner="exec")
    first = await guard.review(connect_review("exec", grant.service_account))
    assert first.json()["response"]["allowed"] is True

    # Another replica: its own engine on the same database.
    other_replica = Database(guard.settings.database_url)
    try:
        async with other_replica.session() as session:
            await session.execute(
                update(Grant).where(Grant.id == grant.id).values(status="revoked")
            )
    finally:
        await other_replica.dispose()

    second = await guard.review(connect_review("exec", grant.service_account))
    answer = second.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["message"] == f"grant {grant.id} is revoked, not active"


async def test_the_listener_answers_health_unknown_paths_methods_and_oversized_bodies(
    guard: RunningGuard,
) -> None:
    health = await guard.client.get(f"{guard.url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (await guard.client.get(f"{guard.url}/admission/default")).status_code == 405
    assert (await guard.client.post(f"{guard.url}/admission/default/x", json={})).status_code == (
        404
    )
    assert (await guard.client.get(f"{guard.url}/docs")).status_code == 404
    oversized = await guard.client.post(
        f"{guard.url}/admission/default",
        content=b"[" + b"0," * (2 * 1024 * 1024) + b"0]",
        headers={"content-type": "application/json"},
    )
    assert oversized.status_code == 413
    assert oversized.json() == {"message": "AdmissionReview too large"}

"""A batch of decisions that cannot be read or recorded fails closed, on SQLite and PostgreSQL:
every review waiting for it gets an error (kube-apiserver then applies failurePolicy Fail),
none is allowed without its audit event, and none waits forever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.db.models import Grant
from tests.guard.admission_reviews import connect_review
from tests.support.guard import RunningGuard

pytestmark = pytest.mark.anyio


async def test_an_exec_whose_event_cannot_be_written_is_not_allowed(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    grant: Grant = await add_grant(scanner="exec")
    # The grant can be read, but no audit event can be written (the batch fails, and so does
    # each review retried on its own).
    async with guard.db.session() as session:
        cascade = " CASCADE" if session.get_bind().dialect.name == "postgresql" else ""
        await session.execute(text("DROP TABLE grant_events" + cascade))

    reviews = [connect_review("exec", grant.service_account) for _ in range(10)]
    responses = await asyncio.wait_for(
        asyncio.gather(*(guard.review(review) for review in reviews)), timeout=30
    )

    assert [r.status_code for r in responses] == [500] * len(reviews)

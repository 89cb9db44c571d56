"""Outbox rows share their audit event's transaction: committed together, rolled back together,
and pointing at exactly the event they announce (the group commit's statement included). Both
databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.db.models import GrantEvent, NotificationOutbox
from app.grants import repository
from app.grants.clock import utcnow
from tests.notifications.receiver import Receiver
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


async def test_rows_commit_and_roll_back_with_their_event(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    receiver.stop()  # nothing is delivered: the rows stay to be looked at
    deployment.reconfigure(
        notifications=[target(receiver), target(receiver, name="second", events=["active"])]
    )
    async with deployment.running(start_reaper=False) as scangate:
        grant = await scangate.grant()

        async def renew_then_fail() -> None:
            async with scangate.services.db.session() as session:
                await repository.add_event(
                    session, grant["id"], at=utcnow(), actor="test", type="renewed", detail={}
                )
                raise Boom

        with pytest.raises(Boom):
            await renew_then_fail()
        async with scangate.services.db.session() as session:
            rows = (await session.scalars(select(NotificationOutbox))).all()
            events = {e.id: e.type for e in await session.scalars(select(GrantEvent))}

    assert "renewed" not in events.values()  # rolled back, and its notification with it
    # requested -> one target; activated -> both (written by the group commit's statement).
    announced = sorted((row.target, events[row.event_id], row.event) for row in rows)
    assert announced == [
        ("audit-sink", "activated", "active"),
        ("audit-sink", "requested", "requested"),
        ("second", "activated", "active"),
    ]
    assert {row.grant_id for row in rows} == {grant["id"]}

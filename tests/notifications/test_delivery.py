"""Grant events reach a real HTTP receiver: signed, as CloudEvents or Slack messages, in order
per grant, after the receiver comes back, and never in a grant request's way. Both databases."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.models import NotificationOutbox
from app.grants import repository
from app.grants.clock import utcnow
from app.settings import load_settings
from tests.notifications.receiver import SECRET, Receiver
from tests.support.metrics import parse_metrics, sample
from tests.support.polling import eventually
from tests.support.scangate import Deployment, Scangate

pytestmark = pytest.mark.anyio


async def outbox_size(scangate: Scangate) -> int:
    async with scangate.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(NotificationOutbox)) or 0)


async def outbox_drains(scangate: Scangate, *, within: float = 5.0) -> bool:
    """The worker deletes a row just after the receiver answered: wait for that."""
    deadline = time.monotonic() + within
    while await outbox_size(scangate) != 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def types_of(receiver: Receiver, grant_id: str) -> list[str]:
    return [
        d["type"].removeprefix("dev.scangate.grant.")
        for d in receiver.documents()
        if d["subject"] == grant_id
    ]


async def test_a_grants_life_arrives_as_signed_cloudevents_in_order(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    deployment.reconfigure(notifications=[target(receiver)])
    async with deployment.running() as scangate:
        grant = await scangate.grant(reason="quarterly CIS scan")
        revoked = await scangate.revoke(grant["id"], reason="scan done")
        assert revoked.json()["status"] == "revoked"
        assert await eventually(lambda: len(receiver.received) == 3, within=10)
        assert await outbox_drains(scangate)  # delivered rows are gone

    assert types_of(receiver, grant["id"]) == ["requested", "active", "revoked"]
    assert all(r.signature_ok for r in receiver.received)
    assert all(
        r.headers["content-type"] == "application/cloudevents+json" for r in receiver.received
    )
    active = receiver.documents("active")[0]
    assert active["specversion"] == "1.0"
    assert active["source"] == "/scangate"
    assert active["subject"] == grant["id"]
    assert active["datacontenttype"] == "application/json"
    assert active["time"].endswith("Z")
    assert active["id"].startswith(f"{grant['id']}-")
    assert active["id"].endswith("-audit-sink")
    data = active["data"]
    assert data["event"] == "active"
    assert data["audit_event"]["type"] == "activated"
    assert data["audit_event"]["actor"] == "apikey:alice"
    assert data["audit_event"]["detail"]["pods"] == ["web-0"]
    assert data["grant"]["namespace"] == "payments"
    assert data["grant"]["requester"] == "apikey:alice"
    assert data["grant"]["reason"] == "quarterly CIS scan"
    revoked_event = receiver.documents("revoked")[0]
    assert revoked_event["data"]["audit_event"]["actor"] == "apikey:alice"
    # Every id differs (one per event and target) and no body carries a credential.
    assert len({d["id"] for d in receiver.documents()}) == 3
    for item in receiver.received:
        for key in deployment.api_keys.values():
            assert key.encode() not in item.body
        assert SECRET.encode() not in item.body


async def test_a_target_gets_only_the_events_it_chose_and_no_target_writes_nothing(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    async with deployment.running() as scangate:
        grant = await scangate.grant()
        await scangate.revoke(grant["id"])
        # No target configured: not a single outbox row.
        assert await outbox_size(scangate) == 0

    deployment.reconfigure(notifications=[target(receiver, events=["revoked", "expired"])])
    async with deployment.running() as scangate:
        grant = await scangate.grant()
        await scangate.revoke(grant["id"])
        assert await eventually(lambda: len(receiver.received) == 1, within=10)
        await asyncio.sleep(1.5)  # a worker pass or more: nothing else arrives
    assert types_of(receiver, grant["id"]) == ["revoked"]


async def test_slack_messages_carry_the_commands_to_decide_an_approval(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    # Slack ignores signatures: a slack target needs no secret.
    slack = target(receiver, name="team-chat", format="slack", events=["approval_needed",
                   "active"])  # fmt: skip
    del slack["secret"]
    receiver.secret = None
    deployment.reconfigure(notifications=[slack])
    async with deployment.running() as scangate:
        grant = await scangate.grant(reason="<!channel> please")
        # What an approval-gated request records (the approvals work writes this event).
        async with scangate.services.db.session() as session:
            await repository.add_event(
                session, grant["id"], at=utcnow(), actor="apikey:alice",
                type="approval_required", detail={"required": 1, "approvers": ["apikey:bob"]},
            )  # fmt: skip
        assert await eventually(lambda: len(receiver.received) == 2, within=10)

    by_event = {r.headers["scangate-event"]: r for r in receiver.received}
    assert set(by_event) == {"active", "approval_needed"}
    assert "scangate-signature" not in by_event["active"].headers
    message = by_event["approval_needed"].document
    assert set(message) == {"text", "blocks"}
    assert grant["id"] in message["text"]
    assert "needs approval" in message["text"]
    assert all(block["type"] in {"section", "context"} for block in message["blocks"])
    rendered = "\n".join(
        b.get("text", {}).get("text", "") for b in message["blocks"] if b["type"] == "section"
    )
    assert f"scangate grant approve {grant['id']}" in rendered
    assert f"scangate grant deny {grant['id']}" in rendered
    # A requester's text cannot mention a whole channel.
    assert "&lt;!channel&gt; please" in rendered
    assert "<!channel>" not in rendered
    assert "scangate grant approve" not in by_event["active"].body.decode()


async def test_a_receiver_that_is_down_gets_everything_once_it_is_back(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    receiver.stop()
    deployment.reconfigure(notifications=[target(receiver)])
    async with deployment.running() as scangate:
        grants = [await scangate.grant() for _ in range(3)]
        await scangate.revoke(grants[0]["id"])
        await asyncio.sleep(2.5)  # several failed attempts
        assert await outbox_size(scangate) == 7
        samples = parse_metrics((await scangate.http.get("/metrics")).text)
        failed = sample(
            samples, "scangate_notification_deliveries_total", target="audit-sink",
            outcome="failed",
        )  # fmt: skip
        assert failed is not None
        assert failed >= 3
        assert sample(samples, "scangate_notification_backlog", target="audit-sink") == 7

        receiver.start()
        assert await eventually(lambda: len(receiver.received) == 7, within=15)
        assert receiver.duplicates == 0
        assert await outbox_drains(scangate)
    assert types_of(receiver, grants[0]["id"]) == ["requested", "active", "revoked"]
    for grant in grants[1:]:
        assert types_of(receiver, grant["id"]) == ["requested", "active"]


async def test_a_failing_event_holds_back_its_own_grant_only(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    held: set[str] = set()
    receiver.refuse = lambda item: 503 if item.document["subject"] in held else None
    deployment.reconfigure(notifications=[target(receiver)])
    async with deployment.running() as scangate:
        first = await scangate.grant()
        held.add(first["id"])
        # The first grant's `requested` may have gone out before it was held: its later
        # events must still wait for each other.
        await scangate.revoke(first["id"])
        second = await scangate.grant()
        await scangate.revoke(second["id"])
        assert await eventually(lambda: len(types_of(receiver, second["id"])) == 3, within=10)
        delivered_first = types_of(receiver, first["id"])
        assert delivered_first in ([], ["requested"])
        held.clear()
        assert await eventually(lambda: len(types_of(receiver, first["id"])) == 3, within=10)
    assert types_of(receiver, first["id"]) == ["requested", "active", "revoked"]
    assert types_of(receiver, second["id"]) == ["requested", "active", "revoked"]


async def test_an_event_nobody_takes_is_given_up_after_the_configured_time(
    deployment: Deployment,
    receiver: Receiver,
    target: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.refuse = lambda _item: 500
    deployment.reconfigure(
        notifications=[target(receiver, events=["requested"], give_up_after_seconds=2)]
    )
    caplog.set_level(logging.WARNING, logger="scangate.notifications")
    async with deployment.running() as scangate:
        grant = await scangate.grant()
        assert await outbox_size(scangate) == 1

        async def given_up() -> float | None:
            samples = parse_metrics((await scangate.http.get("/metrics")).text)
            return sample(samples, "scangate_notifications_given_up_total", target="audit-sink")

        for _ in range(75):  # 15 s
            if await given_up() == 1:
                break
            await asyncio.sleep(0.2)
        assert await given_up() == 1
        assert await outbox_size(scangate) == 0
    assert receiver.attempts >= 2
    assert receiver.received == []
    [line] = [r for r in caplog.records if "given up" in r.getMessage()]
    assert grant["id"] in line.getMessage()
    assert "HTTP 500" in line.getMessage()


async def test_a_hanging_receiver_slows_neither_grant_requests_nor_other_targets(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    stuck = Receiver(secret=SECRET.encode())
    stuck.hanging.set()
    stuck.start()
    deployment.reconfigure(
        notifications=[target(receiver), target(stuck, name="stuck", timeout_seconds=30)]
    )
    try:
        async with deployment.running() as scangate:
            first = await scangate.grant()
            # The stuck target's lane now waits on a POST that will not be answered for 30 s.
            assert await eventually(lambda: stuck.hung >= 1, within=5)
            started = time.monotonic()
            for _ in range(3):
                grant = await scangate.grant()
                revoked = await scangate.revoke(grant["id"])
                assert revoked.json()["status"] == "revoked"
            elapsed = time.monotonic() - started
            # The other target got every event meanwhile.
            assert await eventually(lambda: len(receiver.received) == 11, within=10)
            assert stuck.received == []
            stuck.hanging.clear()
            assert await eventually(lambda: len(stuck.received) == 11, within=15)
            assert types_of(stuck, first["id"]) == ["requested", "active"]
    finally:
        stuck.hanging.clear()
        stuck.stop()
    # Six grant requests while a delivery hung: far below one delivery timeout.
    assert elapsed < 10, elapsed


async def test_two_replicas_deliver_each_event_once(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    deployment.reconfigure(notifications=[target(receiver)])
    async with deployment.running() as one, deployment.running() as two:
        ids = []
        for i in range(6):
            scangate = (one, two)[i % 2]
            grant = await scangate.grant()
            await scangate.revoke(grant["id"])
            ids.append(grant["id"])
        assert await eventually(lambda: len(receiver.received) == 18, within=15)
        await asyncio.sleep(1.5)
    assert receiver.duplicates == 0
    assert len(receiver.accepted_ids) == 18
    for grant_id in ids:
        assert types_of(receiver, grant_id) == ["requested", "active", "revoked"]


async def test_replacing_the_targets_takes_effect_at_once_and_keeps_undelivered_rows(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    """What a configuration reload does through `Services.notifications.replace()`."""
    async with deployment.running() as scangate:
        holder = scangate.services.notifications
        assert holder is not None
        before = await scangate.grant()
        assert await outbox_size(scangate) == 0

        configs = load_settings(deployment.config_path, notifications=[target(receiver)])
        receiver.stop()  # down: the new target's rows wait
        holder.replace_from_settings(configs.notifications)
        added = await scangate.grant()
        assert await outbox_size(scangate) == 2

        holder.replace([])  # the target is removed while its rows are undelivered
        await scangate.grant()
        assert await outbox_size(scangate) == 2  # nothing new written, nothing dropped

        receiver.start()
        holder.replace_from_settings(configs.notifications)  # and comes back
        assert await eventually(lambda: len(receiver.received) == 2, within=10)
        assert await outbox_drains(scangate)
    assert types_of(receiver, added["id"]) == ["requested", "active"]
    assert types_of(receiver, before["id"]) == []

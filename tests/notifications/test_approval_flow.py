"""A request needing approval, end to end through the outbox: the receiver is told a request
needs approval (with the commands to decide it on Slack), of each approval, and of the grant
going active, in that order; a denial is told too."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.auth import generate_api_key
from tests.notifications.receiver import Receiver
from tests.support.polling import eventually
from tests.support.scangate import PRINCIPALS, Deployment, Scangate

pytestmark = pytest.mark.anyio

EVENTS = ["requested", "approval_needed", "approved", "denied", "active"]


@pytest.fixture
def api_keys() -> dict[str, str]:
    return {name: generate_api_key()[0] for name in PRINCIPALS}


@pytest.fixture
def configure(deployment: Deployment, receiver: Receiver, target: Any) -> Callable[..., Deployment]:
    """payments-ci needs one approval by bob; the receiver gets EVENTS in `format`."""

    def apply(**overrides: Any) -> Deployment:
        payments = deployment.document["policies"][0]
        payments["approval"] = {"required": 1, "approvers": ["apikey:bob"]}
        deployment.reconfigure(
            policies=deployment.document["policies"],
            notifications=[target(receiver, events=EVENTS, **overrides)],
        )
        return deployment

    return apply


async def decide(scangate: Scangate, grant_id: str, verdict: str, **body: Any) -> Any:
    path = f"/v1/grants/{grant_id}/{verdict}"
    return await scangate.request("POST", path, who="bob", json=body)


async def test_approval_needed_approved_and_active_arrive_in_order(
    configure: Callable[..., Deployment], receiver: Receiver
) -> None:
    async with configure().running() as scangate:
        pending = await scangate.create(reason="nightly image scan")
        assert pending.status_code == 202, pending.text
        grant_id = pending.json()["id"]
        assert await eventually(lambda: len(receiver.received) == 2, within=10)
        approved = await decide(scangate, grant_id, "approve", reason="CHG-7")
        assert approved.json()["status"] == "active"
        assert await eventually(lambda: len(receiver.received) == 4, within=10)

    documents = receiver.documents()
    assert [d["type"].rsplit(".", 1)[1] for d in documents] == [
        "requested", "approval_needed", "approved", "active",
    ]  # fmt: skip
    assert {d["subject"] for d in documents} == {grant_id}
    needed = documents[1]["data"]["audit_event"]
    assert needed["type"] == "approval_required"
    assert needed["detail"]["required"] == 1
    decision = documents[2]["data"]["audit_event"]
    assert (decision["actor"], decision["detail"]["reason"]) == ("apikey:bob", "CHG-7")


async def test_a_denial_is_told_with_its_reason_and_slack_gets_the_commands(
    configure: Callable[..., Deployment], receiver: Receiver
) -> None:
    async with configure(format="slack").running() as scangate:
        pending = await scangate.create(reason="nightly image scan")
        grant_id = pending.json()["id"]
        assert await eventually(lambda: len(receiver.received) == 2, within=10)
        denied = await decide(scangate, grant_id, "deny", reason="not during the freeze")
        assert denied.json()["status"] == "denied"
        assert await eventually(lambda: len(receiver.received) == 3, within=10)

    messages = [json.dumps(d["blocks"]) for d in receiver.documents()]
    assert "needs approval" in receiver.documents()[1]["text"]
    assert f"scangate grant approve {grant_id}" in messages[1]
    assert f"scangate grant deny {grant_id}" in messages[1]
    assert "scangate grant approve" not in messages[2]
    assert "not during the freeze" in messages[2]

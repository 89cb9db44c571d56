"""The grant guard's refusals leave as `guard_refused` notifications: the real guard app judges
AdmissionReviews as kube-apiserver sends them, its own database connection writes the outbox
rows with the decision's events, and the API process's worker delivers them. Both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.guard.app import create_guard_app
from tests.guard.admission_reviews import connect_review
from tests.notifications.receiver import Receiver
from tests.support.polling import eventually
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


async def test_a_refused_exec_is_notified_and_an_admitted_one_is_not(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    deployment.reconfigure(notifications=[target(receiver, events=["guard_refused"])])
    guard = create_guard_app(deployment.settings)
    async with (
        deployment.running() as scangate,
        guard.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=guard), base_url="https://guard.test"
        ) as admission,
    ):
        grant = await scangate.grant(containers=["app"])
        verdicts = {}
        for container in ("app", "istio-proxy"):
            review = connect_review(
                "exec", grant["service_account"], container=container, command=["id"]
            )
            answer = await admission.post("/admission/default", json=review)
            assert answer.status_code == 200, answer.text
            verdicts[container] = answer.json()["response"]["allowed"]
        assert verdicts == {"app": True, "istio-proxy": False}
        assert await eventually(lambda: len(receiver.received) == 1, within=10)
        await asyncio.sleep(1.5)  # a poll or more: the admitted exec is not notified
    [refusal] = receiver.documents()
    assert refusal["type"] == "dev.scangate.grant.guard_refused"
    assert refusal["subject"] == grant["id"]
    detail = refusal["data"]["audit_event"]["detail"]
    assert detail["verdict"] == "denied"
    assert detail["container"] == "istio-proxy"
    assert refusal["data"]["audit_event"]["type"] == "exec"

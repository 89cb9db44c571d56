"""A reload (app/reload) replaces the notification targets at once: events of grants made after
it reach a new target, and a refused file leaves the targets in force untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.main import config_reloader_of, create_app
from tests.notifications.receiver import Receiver
from tests.support.polling import eventually
from tests.support.scangate import Deployment, Scangate

pytestmark = pytest.mark.anyio


async def test_a_reload_adds_a_target_and_a_bad_one_changes_nothing(
    deployment: Deployment, receiver: Receiver, target: Any
) -> None:
    app = create_app(deployment.settings, config_path=deployment.config_path)
    reloader = config_reloader_of(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scangate.test") as http:
            scangate = Scangate(app, http, deployment.api_keys)
            before = await scangate.grant()
            deployment.reconfigure(notifications=[target(receiver)])
            assert (await reloader.reload("test")).outcome == "applied"
            added = await scangate.grant()
            assert await eventually(lambda: len(receiver.received) == 2, within=10)
            deployment.reconfigure(
                notifications=[target(receiver, secret=None, secret_file="/nonexistent")]
            )
            assert (await reloader.reload("test")).outcome != "applied"
            assert (await scangate.revoke(added["id"])).json()["status"] == "revoked"
            assert await eventually(lambda: len(receiver.received) == 3, within=10)
    assert before["id"] not in [d["subject"] for d in receiver.documents()]
    assert [d["type"].rsplit(".", 1)[1] for d in receiver.documents()] == [
        "requested", "active", "revoked",
    ]  # fmt: skip

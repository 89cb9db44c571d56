"""A reload (app/reload) replaces the notification targets at once: events of grants made after
it reach a new target, and a refused file leaves the targets in force untouched."""

from __future__ import annotations

from pathlib import Path
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


async def test_a_reload_reads_a_rotated_url_file_though_the_configuration_is_unchanged(
    deployment: Deployment, receiver: Receiver, target: Any, tmp_path: Path
) -> None:
    # A webhook URL kept in a mounted Secret (`url_file`, what the Helm chart renders) is
    # rotated by changing the Secret, not scangate.yaml: a reload must still pick it up.
    rotated = Receiver(secret=receiver.secret)
    rotated.start()
    try:
        url_file = tmp_path / "hook-url"
        url_file.write_text(receiver.url)
        entry = target(receiver, url_file=str(url_file))
        del entry["url"]
        deployment.reconfigure(notifications=[entry])
        app = create_app(deployment.settings, config_path=deployment.config_path)
        reloader = config_reloader_of(app)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://scangate.test"
            ) as http:
                scangate = Scangate(app, http, deployment.api_keys)
                await scangate.grant()
                assert await eventually(lambda: len(receiver.received) == 2, within=10)
                url_file.write_text(rotated.url)
                assert (await reloader.reload("SIGHUP")).outcome == "applied"
                await scangate.grant()
                assert await eventually(lambda: len(rotated.received) == 2, within=10)
        assert len(receiver.received) == 2
    finally:
        rotated.stop()

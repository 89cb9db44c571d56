"""The file watcher reloads when the file's content differs from what the service last read:
once per change, never again for a change SIGHUP already reloaded, and a refused file only
when it changes again."""

from __future__ import annotations

import pytest

from app.auth import generate_api_key
from app.reload import ConfigFileWatcher
from tests.reload.reloadable import Reloadable
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


async def test_the_watcher_reloads_each_change_once(
    reloadable: Reloadable, deployment: Deployment
) -> None:
    watcher = ConfigFileWatcher(reloadable.reloader, deployment.config_path, interval=60)
    assert await watcher.check() is False  # the file the service started from

    key, digest = generate_api_key()
    deployment.reconfigure(
        api_keys=[*deployment.document["api_keys"], {"name": "gina", "sha256": digest}]
    )
    assert await watcher.check() is True
    assert reloadable.reloader.last is not None
    assert (reloadable.reloader.last.outcome, reloadable.reloader.last.trigger) == (
        "applied",
        "file changed",
    )
    assert await watcher.check() is False

    deployment.reconfigure(admins=["apikey:root", "apikey:gina"])
    assert (await reloadable.reloader.reload("SIGHUP")).outcome == "applied"
    assert await watcher.check() is False  # SIGHUP already read this content
    who = await reloadable.http.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    assert who.json()["is_admin"] is True


async def test_a_refused_file_is_not_reloaded_again_until_it_changes(
    reloadable: Reloadable, deployment: Deployment
) -> None:
    watcher = ConfigFileWatcher(reloadable.reloader, deployment.config_path, interval=60)
    deployment.config_path.write_text("policies: {")

    assert await watcher.check() is True
    assert await watcher.check() is False
    assert reloadable.reloader.last is not None
    assert reloadable.reloader.last.outcome == "refused"

    deployment.reconfigure()  # the whole file again
    assert await watcher.check() is True
    assert reloadable.reloader.last.outcome == "unchanged"

"""The grant guard's listener shares the configuration in force with the API (`scangate
serve`): after a reload it judges the next review with the new policies (SQLite and
PostgreSQL)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.db.engine import Database
from app.guard.app import create_guard_app
from app.reload import ConfigReloader, LiveConfig, build_generation
from app.settings import load_settings
from tests.guard.admission_reviews import (
    ephemeral_review,
    grant_username,
    restricted_debug_container,
)
from tests.support.grant_rows import grant_row, insert_grants

pytestmark = pytest.mark.anyio


def document(database_url: str, debug_images: list[str]) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "policies": [
            {
                "name": "payments-ci",
                "subjects": ["apikey:alice"],
                "namespaces": ["payments"],
                "scanners": ["debug"],
                "debug_images": debug_images,
            }
        ],
    }


async def add_debug_grant(database_url: str) -> str:
    grant = grant_row(scanner="debug", containers=None)
    db = Database(database_url)
    try:
        await insert_grants(db, grant)
    finally:
        await db.dispose()
    return grant.id


async def test_the_guard_judges_the_next_review_with_the_reloaded_policies(
    tmp_path: Path, migrated_url: str
) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump(document(migrated_url, ["busybox:1.36"])))
    settings = load_settings(config)
    reloader = ConfigReloader(
        LiveConfig(build_generation(settings)), functools.partial(load_settings, config)
    )
    grant_id = await add_debug_grant(migrated_url)
    review = ephemeral_review(grant_username(grant_id), restricted_debug_container())
    guard = create_guard_app(settings, reloader.live)

    async with guard.lifespan():
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://guard") as client:
            before = await client.post("/admission/default", json=review)
            config.write_text(yaml.safe_dump(document(migrated_url, ["registry.example/scan:*"])))
            assert (await reloader.reload("test")).outcome == "applied"
            after = await client.post("/admission/default", json=review)

    assert before.json()["response"]["allowed"] is True
    refusal = after.json()["response"]
    assert refusal["allowed"] is False
    assert "registry.example/scan:*" in refusal["status"]["message"]

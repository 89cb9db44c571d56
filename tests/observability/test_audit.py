"""Audit: every grant event is also a structured audit record in the log stream (only once
committed), and admins export the whole trail from `GET /v1/events` page by page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.db.engine import run_migrations
from app.grants import repository
from app.grants.audit_feed import SETTLE_SECONDS
from app.grants.clock import format_rfc3339, utcnow
from kubesim.pytest_plugin import KubesimHandle
from tests.support.grant_rows import grant_row, insert_grants
from tests.support.logs import LogCapture
from tests.support.scangate import Deployment, Scangate, scangate_config

pytestmark = pytest.mark.anyio


async def every_event(scangate: Scangate, grant_ids: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for grant_id in grant_ids:
        events += await scangate.events(grant_id, who="root")
    return sorted(events, key=lambda e: e["id"])


async def test_every_grant_event_is_also_an_audit_record(
    scangate: Scangate, kubesim: KubesimHandle, json_logs: LogCapture
) -> None:
    kept = await scangate.grant(reason="nightly scan")
    assert (await scangate.kubeconfig(kept["id"])).status_code == 200
    renewed = await scangate.request(
        "POST", f"/v1/grants/{kept['id']}/renew", json={"ttl_seconds": 1200}
    )
    assert renewed.status_code == 200
    revoked = await scangate.grant()
    assert (await scangate.revoke(revoked["id"], reason="done")).status_code == 200
    expired = await scangate.grant()
    await scangate.expire_soon(expired["id"])
    assert await scangate.wait_for_status(expired["id"], {"expired"}) == "expired"
    kubesim.inject_fault(status=403, methods=["POST"], resources=["roles"])
    assert (await scangate.create()).status_code == 502
    kubesim.clear_faults()
    (failed_id,) = [
        g["id"]
        for g in (await scangate.request("GET", "/v1/grants", params={"status": "failed"})).json()[
            "items"
        ]
    ]

    events = await every_event(scangate, [kept["id"], revoked["id"], expired["id"], failed_id])
    records = [r["audit"] for r in json_logs.by_logger("scangate.audit")]
    assert sorted(records, key=lambda r: r["event_id"]) == [
        {
            "event_id": e["id"],
            "grant_id": e["grant_id"],
            "type": e["type"],
            "actor": e["actor"],
            "at": e["at"],
            "detail": e["detail"],
        }
        for e in events
    ]
    assert {e["type"] for e in events} >= {
        "requested",
        "activated",
        "kubeconfig_issued",
        "renewed",
        "revoking",
        "revoked",
        "expired",
        "failed",
    }
    # Records made during a request carry its id; the reaper's carry none.
    by_type = {r["audit"]["type"]: r for r in json_logs.by_logger("scangate.audit")}
    assert by_type["kubeconfig_issued"]["request_id"]
    assert "request_id" not in by_type["expired"]


async def test_an_event_rolled_back_with_its_transaction_is_never_audited(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    db = scangate.services.db
    row = grant_row()
    await insert_grants(db, row)

    async def failing_unit_of_work() -> None:
        async with db.session() as session:
            await repository.add_event(
                session, row.id, at=utcnow(), actor="test", type="renewed", detail={"n": 1}
            )
            raise RuntimeError("the unit of work fails after the event was flushed")

    with pytest.raises(RuntimeError):
        await failing_unit_of_work()
    async with db.session() as session:
        await repository.add_event(
            session, row.id, at=utcnow(), actor="test", type="revoking", detail={"n": 2}
        )

    records = [r["audit"] for r in json_logs.by_logger("scangate.audit")]
    assert [(r["type"], r["detail"]) for r in records] == [("revoking", {"n": 2})]


# -- the export ---------------------------------------------------------------------------------


@pytest.fixture
async def service(
    tmp_path: Path, kubesim: KubesimHandle, database_url: str, api_keys: dict[str, str]
) -> AsyncIterator[Scangate]:
    """The service on SQLite and on PostgreSQL: the feed's query must hold on both."""
    run_migrations(database_url)
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig), database_url=database_url, api_keys=api_keys
    )
    async with Deployment(tmp_path, api_keys, document).running() as running:
        yield running


async def export(scangate: Scangate, **params: Any) -> dict[str, Any]:
    response = await scangate.request("GET", "/v1/events", who="root", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def settle() -> None:
    await asyncio.sleep(SETTLE_SECONDS + 0.1)


async def test_export_pages_through_every_event_once_in_order(service: Scangate) -> None:
    grants = [await service.grant(who=who) for who in ("alice", "bob", "alice")]
    await service.revoke(grants[0]["id"])
    await settle()

    seen: list[dict[str, Any]] = []
    page = await export(service, limit=2)
    pages = 1
    while page["has_more"]:
        assert len(page["items"]) == 2
        seen += page["items"]
        page = await export(service, limit=2, cursor=page["next_cursor"])
        pages += 1
    seen += page["items"]

    everything = await every_event(service, [g["id"] for g in grants])
    assert seen == everything
    assert pages == (len(everything) + 1) // 2
    # Polling from the last cursor: nothing new yet, then exactly what happened since.
    cursor = page["next_cursor"]
    assert await export(service, cursor=cursor) == {
        "items": [],
        "next_cursor": cursor,
        "has_more": False,
    }
    await service.revoke(grants[1]["id"], who="bob")
    await settle()
    newer = await export(service, cursor=cursor)
    assert [e["type"] for e in newer["items"]] == ["revoking", "revoked"]
    assert {e["grant_id"] for e in newer["items"]} == {grants[1]["id"]}


async def test_export_starts_at_since(service: Scangate) -> None:
    await service.grant()
    await settle()
    middle = utcnow()
    later = await service.grant(who="bob")
    await settle()

    page = await export(service, since=format_rfc3339(middle))

    assert {e["grant_id"] for e in page["items"]} == {later["id"]}
    assert all(e["at"] >= format_rfc3339(middle) for e in page["items"])
    future = format_rfc3339(datetime.now(UTC) + timedelta(days=1))
    assert (await export(service, since=future))["items"] == []


async def test_fresh_events_wait_until_settled(service: Scangate) -> None:
    await service.grant()

    assert (await export(service))["items"] == []
    await settle()
    assert len((await export(service))["items"]) == 2  # requested, activated


async def test_export_is_for_admins_only(scangate: Scangate) -> None:
    as_alice = await scangate.request("GET", "/v1/events", who="alice")
    anonymous = await scangate.http.get("/v1/events")

    assert as_alice.status_code == 403
    assert as_alice.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-01-31T12:00:00"}, "query.since"),  # no time zone: ambiguous
        ({"since": "yesterday"}, "query.since"),
        ({"cursor": "abc"}, "query.cursor"),
        ({"cursor": "1" * 20}, "query.cursor"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
    ],
)
async def test_export_rejects_bad_parameters_naming_them(
    scangate: Scangate, params: dict[str, str], field: str
) -> None:
    response = await scangate.request("GET", "/v1/events", who="root", params=params)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]

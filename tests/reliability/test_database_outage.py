"""Scenario 3: the database goes away. While callers keep working, the PostgreSQL server is
stopped and started again: meanwhile `/readyz` says not ready and requests get 503 with
Retry-After (never 500); afterwards scangate recovers by itself, with no grant lost and the
cluster consistent with the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.engine import run_migrations
from app.main import reap_once as run_once
from devsupport.postgres_server import postgres_available
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import (
    Outcomes,
    assert_invariant,
    audit,
    grant_rows,
    in_process,
    settle,
)
from tests.reliability.postgres_control import StoppablePostgres
from tests.support.figures import RecordFigures
from tests.support.run_sizes import Mode
from tests.support.scangate import Deployment, Scangate, scangate_config

pytestmark = pytest.mark.anyio


def unreachable_postgres_url() -> str:
    from tests.reliability.harness import free_port

    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/scangate"


async def test_unreachable_database_answers_503_with_retry_after_not_500(
    tmp_path: Path, kubesim: KubesimHandle, api_keys: dict[str, str]
) -> None:
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig),
        database_url=unreachable_postgres_url(),
        api_keys=api_keys,
        reaper={"enabled": False},
    )
    async with in_process(Deployment(tmp_path, api_keys, document)) as scangate:
        answers = [
            await scangate.request("GET", "/v1/grants"),
            await scangate.create(),
            await scangate.request("GET", "/v1/grants/01jbq3z5ksxn2m8d7c4v6w9e0r"),
            await scangate.revoke("01jbq3z5ksxn2m8d7c4v6w9e0r"),
        ]
        for response in answers:
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["type"].endswith("/upstream-unavailable")
            assert "database" in problem["detail"]
            assert "127.0.0.1" not in response.text  # driver messages stay in the log
        ready = await scangate.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
        # What needs no database keeps working.
        assert (await scangate.request("GET", "/v1/whoami")).status_code == 200


@pytest.fixture
def own_postgres() -> Iterator[StoppablePostgres]:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not installed")
    server = StoppablePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


class Callers:
    """Callers that keep creating grants (revoking every third) and listing them."""

    def __init__(self, scangate: Scangate) -> None:
        self.scangate = scangate
        self.outcomes = Outcomes()
        self.granted: dict[str, str] = {}  # grant id -> the status the caller was last told
        self.stopping = False

    async def run(self, index: int) -> None:
        who = ("alice", "bob")[index % 2]
        n = 0
        while not self.stopping:
            n += 1
            created = await self.scangate.create(who, pods=["web-0"])
            self.outcomes.check(created, "create")
            if created.status_code == 201:
                grant_id = created.json()["id"]
                self.granted[grant_id] = "active"
                if n % 3 == 0:
                    revoked = await self.scangate.revoke(grant_id, who)
                    self.outcomes.check(revoked, "revoke")
                    if revoked.status_code in (200, 202):
                        self.granted[grant_id] = revoked.json()["status"]
            listed = await self.scangate.request("GET", "/v1/grants?limit=5", who=who)
            self.outcomes.check(listed, "list")
            if created.status_code == 503 or listed.status_code == 503:
                await asyncio.sleep(0.05)  # as a client honouring Retry-After would, shortened


async def readiness(scangate: Scangate) -> int:
    return (await scangate.http.get("/readyz")).status_code


async def test_database_outage_under_load_recovers_by_itself_and_loses_no_grant(
    mode: Mode,
    tmp_path: Path,
    kubesim: KubesimHandle,
    own_postgres: StoppablePostgres,
    api_keys: dict[str, str],
    figures: RecordFigures,
) -> None:
    database_url = own_postgres.url
    run_migrations(database_url)
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig),
        database_url=database_url,
        api_keys=api_keys,
        # A grant whose activation could not be committed stays `provisioning`; the reaper
        # fails it (and deletes its objects) after this long.
        reaper={"provisioning_timeout_seconds": 2, "revoke_retry_max_seconds": 1},
    )
    started = time.monotonic()
    async with in_process(Deployment(tmp_path, api_keys, document)) as scangate:
        callers = Callers(scangate)
        tasks = [asyncio.create_task(callers.run(i)) for i in range(mode.outage_clients)]
        await asyncio.sleep(1.0)
        assert await readiness(scangate) == 200
        before = callers.outcomes.requests

        await asyncio.to_thread(own_postgres.stop, "fast")
        outage_started = time.monotonic()
        ready_during: list[int] = []
        while time.monotonic() - outage_started < mode.outage_seconds:
            ready_during.append(await readiness(scangate))
            await asyncio.sleep(0.2)
        during = callers.outcomes.statuses[503]
        await asyncio.to_thread(own_postgres.start)

        restarted = time.monotonic()
        while await readiness(scangate) != 200:
            assert time.monotonic() - restarted < 30, "scangate did not become ready again"
            await asyncio.sleep(0.1)
        ready_after = time.monotonic() - restarted
        granted_before = len(callers.granted)
        while len(callers.granted) == granted_before:
            assert time.monotonic() - restarted < 30, "no grant was created after the outage"
            await asyncio.sleep(0.05)
        serving_after = time.monotonic() - restarted
        await asyncio.sleep(1.0)
        callers.stopping = True
        await asyncio.gather(*tasks)

        await settle(kubesim, database_url, within=60)

    report = await run_once(Deployment(tmp_path, api_keys, document).settings)
    rows = grant_rows(database_url)
    result = audit(kubesim, database_url)
    lost = {g: told for g, told in callers.granted.items() if g not in rows}
    contradicted = {
        g: (told, rows[g][0])
        for g, told in callers.granted.items()
        if g in rows and (rows[g][0] == "failed" or (told == "revoked" and rows[g][0] != told))
    }
    figures(
        **callers.outcomes.summary(),
        requests_before_outage=before,
        outage_seconds=mode.outage_seconds,
        answers_503_during_outage=during,
        readyz_during_outage=sorted(set(ready_during)),
        seconds_to_ready_after_restart=round(ready_after, 2),
        seconds_to_first_grant_after_restart=round(serving_after, 2),
        grants_acknowledged=len(callers.granted),
        grants_lost=len(lost),
        final_statuses=result.statuses,
        leaks_found=result.leaked_objects,
        seconds=round(time.monotonic() - started, 1),
    )
    assert callers.outcomes.violations == []
    assert callers.outcomes.statuses[500] == 0
    assert during > 0, "no request noticed the outage: nothing was proven"
    assert set(ready_during[1:]) == {503}
    assert lost == {}
    assert contradicted == {}
    assert report.errors == []
    assert_invariant(result)

"""Scenario 2: the server dies. A real `scangate serve` is killed with SIGKILL at a random
moment while callers create and revoke grants, so some die mid-provisioning and some
mid-revocation; then one reaper pass (`scangate reap --once`) must leave the cluster holding
objects exactly for the live grants, with no grant stuck, and the restarted server must carry
on."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db.urls import sync_database_url
from app.grants.revocation import REVOCATION_LEASE
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import (
    ServeProcess,
    assert_invariant,
    audit,
    reap_once,
    write_config,
)
from tests.support.figures import RecordFigures
from tests.support.run_sizes import Mode
from tests.support.scangate import scangate_config

CALLERS = 6
TARGETS: list[dict[str, Any]] = [{"pods": ["web-0"]}, {"pods": ["web-1", "web-0"]},
                                 {"selector": "app=web"}]  # fmt: skip


class Workload:
    """Callers that create grants and revoke every other one, until the server is gone."""

    def __init__(self, base_url: str, api_keys: dict[str, str], seed: int) -> None:
        self.base_url = base_url
        self.api_keys = api_keys
        self.random = random.Random(seed)
        self.requests = 0
        self.unexpected: list[str] = []
        self._lock = threading.Lock()

    def run(self, callers: int) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._caller, args=(i,), daemon=True) for i in range(callers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _caller(self, index: int) -> None:
        who = ("alice", "bob")[index % 2]
        headers = {"Authorization": f"Bearer {self.api_keys[who]}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as http:
            n = 0
            while True:
                n += 1
                body = {"namespace": "payments", "scanner": "exec", **TARGETS[n % len(TARGETS)]}
                try:
                    created = http.post("/v1/grants", json=body)
                    self._count(created, {201})
                    if created.status_code == 201 and n % 2 == 0:
                        revoked = http.post(f"/v1/grants/{created.json()['id']}/revoke", json={})
                        self._count(revoked, {200})
                except httpx.TransportError:
                    return  # the server was killed

    def _count(self, response: httpx.Response, expected: set[int]) -> None:
        with self._lock:
            self.requests += 1
            if response.status_code not in expected:
                self.unexpected.append(f"{response.status_code} {response.text[:200]}")


def lease_runs_out(database_url: str) -> int:
    """Make every `revoking` grant's claim lease end now, as if its REVOCATION_LEASE (30 s) had
    passed: the killed server can never finish those attempts, and the reaper takes a grant
    over only once the lease is over. Returns how many grants were caught mid-revocation."""
    engine = create_engine(sync_database_url(database_url), poolclass=NullPool)
    earlier = datetime.now(UTC) - timedelta(seconds=1)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                text("UPDATE grants SET next_attempt_at = :at WHERE status = 'revoking'"),
                {"at": earlier.replace(tzinfo=None)},
            )
    finally:
        engine.dispose()
    return int(result.rowcount)


def test_kill_9_during_provisioning_and_revocation_then_one_reaper_pass(
    mode: Mode,
    tmp_path: Path,
    kubesim: KubesimHandle,
    migrated_sqlite_url: str,
    api_keys: dict[str, str],
    figures: RecordFigures,
) -> None:
    assert REVOCATION_LEASE.total_seconds() > 1  # what lease_runs_out stands in for
    database_url = migrated_sqlite_url
    base = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig), database_url=database_url, api_keys=api_keys
    )
    serve_config = write_config(tmp_path / "serve.yaml", base)
    # The pass after a crash: a grant still `provisioning` a second after the kill belonged to
    # a request that died (the served config keeps the production-like 120 s).
    reap_config = write_config(
        tmp_path / "reap.yaml", {**base, "reaper": {"provisioning_timeout_seconds": 1}}
    )
    # Provisioning and revocation take a few cluster calls of 0-80 ms each, so a kill at a
    # random moment usually finds several requests half-way through.
    kubesim.set_latency(fixed_ms=5, jitter_ms=80)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    server = ServeProcess(serve_config, tmp_path / "serve.log")
    mid_provisioning = mid_revocation = requests = 0
    started = time.monotonic()
    try:
        for round_number in range(mode.crash_rounds):
            server.start()
            workload = Workload(server.url, api_keys, seed + round_number)
            threads = workload.run(CALLERS)
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            for thread in threads:
                thread.join(timeout=60)
            requests += workload.requests
            assert workload.unexpected == [], f"round {round_number} (seed {seed})"

            caught = audit(kubesim, database_url)
            mid_provisioning += caught.statuses.get("provisioning", 0)
            mid_revocation += lease_runs_out(database_url)
            time.sleep(1.1)  # past the reap config's provisioning timeout
            reaped = reap_once(reap_config)
            assert reaped.returncode == 0, reaped.stdout + reaped.stderr
            assert_invariant(audit(kubesim, database_url))

        # The restarted server serves and cleans up as before.
        server.start()
        headers = {"Authorization": f"Bearer {api_keys['alice']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            created = http.post("/v1/grants", json={"namespace": "payments", "pods": ["web-0"],
                                                    "scanner": "exec"})  # fmt: skip
            assert created.status_code == 201, created.text
            revoked = http.post(f"/v1/grants/{created.json()['id']}/revoke", json={})
            assert revoked.json()["status"] == "revoked"
    finally:
        server.stop()
    final = audit(kubesim, database_url)
    figures(
        crash_rounds=mode.crash_rounds,
        crashes_survived=mode.crash_rounds,
        seed=seed,
        requests=requests,
        killed_mid_provisioning=mid_provisioning,
        killed_mid_revocation=mid_revocation,
        final_statuses=final.statuses,
        leaks_found=final.leaked_objects,
        seconds=round(time.monotonic() - started, 1),
    )
    assert_invariant(final)
    # A kill that never caught a request half-way would prove nothing.
    assert mid_provisioning + mid_revocation > 0

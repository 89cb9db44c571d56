"""Scenario 1: a flaky cluster. kubesim fails 20% of scangate's mutating calls (500, 503, 429
with Retry-After, dropped connections, 5% each) and adds latency spikes, while callers create
grants, fetch kubeconfigs, revoke them and let them expire. No caller may see a 500, only the
documented 502/503 (503 with Retry-After), and once the reaper has run, every grant is
consistent with the cluster."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from app.main import reap_once as run_once
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import Outcomes, assert_invariant, audit, in_process, settle
from tests.support.figures import RecordFigures
from tests.support.run_sizes import Mode
from tests.support.scangate import Deployment, Scangate, scangate_config

pytestmark = pytest.mark.anyio

MUTATING = ["POST", "PUT", "PATCH", "DELETE"]
FAULT_KINDS: list[dict[str, Any]] = [
    {"status": 500},
    {"status": 503},
    {"status": 429, "retry_after": 1},
    {"status": None, "drop_connection": True},
]
# Targets that succeed on a healthy cluster: named pods, and a selector of Running pods.
TARGETS: list[dict[str, Any]] = [
    {"pods": ["web-0"]},
    {"pods": ["web-0", "web-1"]},
    {"selector": "app=web"},
    {"pods": ["db-0"], "scanner": "debug"},
]


def inject_mutating_faults(sim: KubesimHandle, rate: float) -> None:
    """Each kind fires on `rate / 4` of mutating calls. kubesim tries rules in order and the
    first that fires wins, so later rules get the conditional probability."""
    share, left = rate / len(FAULT_KINDS), 1.0
    for kind in FAULT_KINDS:
        sim.inject_fault(methods=MUTATING, probability=share / left, **kind)
        left -= share


def kubesim_state(sim: KubesimHandle) -> dict[str, Any]:
    state: dict[str, Any] = sim._admin("GET", "state")
    return state


async def exercise_grant(scangate: Scangate, index: int, outcomes: Outcomes) -> str:
    """One caller's story: create, then (by index) fetch + revoke, revoke, expire, or keep."""
    who = ("alice", "bob")[index % 2]
    body = {"scanner": "exec", "reason": f"fault run {index}", **TARGETS[index % len(TARGETS)]}
    response = await scangate.create(who, **body)
    outcomes.check(response, "create")
    if response.status_code != 201:
        return f"create {response.status_code}"
    grant_id = response.json()["id"]
    action = index % 4
    if action == 0:
        outcomes.check(await scangate.kubeconfig(grant_id, who), "kubeconfig")
    if action in (0, 1):
        outcomes.check(await scangate.revoke(grant_id, who, reason="done"), "revoke")
        return "revoked"
    if action == 2:
        await scangate.expire_soon(grant_id)
        return "expired"
    outcomes.check(await scangate.get(grant_id, who), "get")
    return "kept"


async def test_faulty_cluster_never_yields_500_and_ends_consistent(
    mode: Mode,
    tmp_path: Path,
    kubesim: KubesimHandle,
    migrated_postgres_url: str,
    api_keys: dict[str, str],
    figures: RecordFigures,
) -> None:
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig),
        database_url=migrated_postgres_url,
        api_keys=api_keys,
        # Revocations the cluster refused are retried within a second or two, not a minute.
        reaper={"revoke_retry_max_seconds": 1, "sweep_interval_seconds": 60},
    )
    deployment = Deployment(tmp_path, api_keys, document)
    inject_mutating_faults(kubesim, rate=0.20)
    kubesim.set_latency(fixed_ms=1, jitter_ms=60)  # spikes up to 60 ms on every call
    outcomes = Outcomes()
    started = time.monotonic()

    async with in_process(deployment) as scangate:
        gate = asyncio.Semaphore(mode.fault_concurrency)

        async def one(index: int) -> str:
            async with gate:
                return await exercise_grant(scangate, index, outcomes)

        order = list(range(mode.fault_grants))
        random.Random(8).shuffle(order)
        stories = await asyncio.gather(*(one(i) for i in order))
        faults_fired = kubesim_state(kubesim)["fired"]
        # The reaper keeps working through the faults, then the cluster heals.
        await settle(kubesim, migrated_postgres_url, within=5)
        kubesim.clear_faults()
        kubesim.set_latency(0, 0)
        await settle(kubesim, migrated_postgres_url, within=30)

    report = await run_once(deployment.settings)  # one full pass, sweep included
    result = audit(kubesim, migrated_postgres_url)
    figures(
        grant_requests=mode.fault_grants,
        **outcomes.summary(),
        faults_injected=faults_fired,
        outcomes=dict(sorted((s, stories.count(s)) for s in set(stories))),
        final_statuses=result.statuses,
        final_reaper_pass=f"swept {report.swept}, errors {len(report.errors)}",
        leaks_found=result.leaked_objects,
        seconds=round(time.monotonic() - started, 1),
    )
    assert outcomes.violations == []
    assert outcomes.statuses[500] == 0
    assert faults_fired >= mode.fault_grants // 4, "the faults did not fire: nothing was proven"
    assert outcomes.statuses[201] > mode.fault_grants // 2, "hardly any grant got through"
    assert_invariant(result)
    assert report.errors == []
    active = sum(1 for status, _ in result.grants.values() if status == "active")
    assert active == stories.count("kept")

"""Cluster calls run in a bounded pool per cluster and never block the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kube.conftest import cluster_client

pytestmark = pytest.mark.anyio

LATENCY_S = 0.2


async def timed_reads(kubesim: Any, *, calls: int, max_concurrency: int) -> float:
    cluster = cluster_client(Path(kubesim.admin_kubeconfig), max_concurrency=max_concurrency)
    try:
        await cluster.namespace_exists("payments")  # connect outside the measurement
        kubesim.set_latency(fixed_ms=LATENCY_S * 1000)
        started = time.monotonic()
        results = await asyncio.gather(
            *(cluster.namespace_exists("payments") for _ in range(calls))
        )
        assert all(results)
        return time.monotonic() - started
    finally:
        await cluster.aclose()


async def test_calls_to_one_cluster_run_concurrently(kubesim: Any) -> None:
    elapsed = await timed_reads(kubesim, calls=16, max_concurrency=16)
    assert elapsed < 16 * LATENCY_S / 3  # far from serial


async def test_concurrency_is_bounded_by_the_pool(kubesim: Any) -> None:
    elapsed = await timed_reads(kubesim, calls=8, max_concurrency=2)
    assert elapsed >= 4 * LATENCY_S * 0.9  # 8 calls, 2 at a time


async def test_urllib3_pool_matches_so_no_connection_is_discarded(
    kubesim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        await timed_reads(kubesim, calls=24, max_concurrency=12)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


async def test_event_loop_keeps_running_during_slow_calls(kubesim: Any) -> None:
    cluster = cluster_client(Path(kubesim.admin_kubeconfig), max_concurrency=4)
    try:
        kubesim.set_latency(fixed_ms=500)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.gather(*(cluster.namespace_exists("payments") for _ in range(4)))
        task.cancel()
        assert ticks >= 20  # ~50 if the loop was free for the whole half second
    finally:
        await cluster.aclose()


async def test_creates_and_deletes_whose_answers_are_dropped_reuse_their_connections(
    kubesim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Creates and deletes read their answer without decoding it; the connection must still go
    # back to the pool, or every call would open a new one (and the pool would overflow).
    from datetime import UTC, datetime, timedelta

    from app.kube.models import GrantTarget
    from app.kube.profiles import profile_rules

    cluster = cluster_client(Path(kubesim.admin_kubeconfig), max_concurrency=3)
    targets = [
        GrantTarget(f"g{i:025d}", "payments", "exec", "apikey:a", datetime.now(UTC) + timedelta(1))
        for i in range(8)
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            for target in targets:
                await asyncio.gather(
                    cluster.create_service_account(target),
                    cluster.create_role(target, profile_rules("exec", ["web-0"])),
                )
                await cluster.create_role_binding(target)
            await asyncio.gather(
                *(cluster.delete_grant_objects(t.grant_id, "payments") for t in targets)
            )
        calls = [r for r in kubesim.requests() if r["verb"] in ("create", "delete")]
        assert [r["status"] for r in calls] == [201] * 24 + [200] * 24
        pool = cluster._api_client.rest_client.pool_manager.connection_from_url(kubesim.url)
        assert pool.num_connections <= 3  # 48 calls over the pool's 3 connections
        assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    finally:
        await cluster.aclose()

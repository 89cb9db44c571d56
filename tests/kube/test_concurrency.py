"""Cluster calls run in a bounded pool per cluster and never block the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pytest
import yaml

from app.kube.models import GrantTarget
from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.kube import cluster_client

pytestmark = pytest.mark.anyio

LATENCY_S = 0.2


async def timed_reads(kubesim: KubesimHandle, *, calls: int, max_concurrency: int) -> float:
    cluster = await cluster_client(Path(kubesim.admin_kubeconfig), max_concurrency=max_concurrency)
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


async def test_calls_to_one_cluster_run_concurrently(kubesim: KubesimHandle) -> None:
    elapsed = await timed_reads(kubesim, calls=16, max_concurrency=16)
    assert elapsed < 16 * LATENCY_S / 3  # far from serial


async def test_concurrency_is_bounded_by_the_pool(kubesim: KubesimHandle) -> None:
    elapsed = await timed_reads(kubesim, calls=8, max_concurrency=2)
    assert elapsed >= 4 * LATENCY_S * 0.9  # 8 calls, 2 at a time


async def test_connections_are_reused_and_bounded_by_the_pool(
    kubesim: KubesimHandle, tmp_path: Path
) -> None:
    async with CountingForwarder(kubesim.url) as forwarder:
        config = kubeconfig_for_server(Path(kubesim.admin_kubeconfig), forwarder.url, tmp_path)
        cluster = await cluster_client(config, max_concurrency=12)
        try:
            for _ in range(3):
                assert all(
                    await asyncio.gather(*(cluster.namespace_exists("payments") for _ in range(24)))
                )
        finally:
            await cluster.aclose()
    # 72 calls, at most 12 at a time: never more connections than the pool holds.
    assert 1 <= forwarder.connections <= 12


async def test_event_loop_keeps_running_during_slow_calls(kubesim: KubesimHandle) -> None:
    cluster = await cluster_client(Path(kubesim.admin_kubeconfig), max_concurrency=4)
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
    kubesim: KubesimHandle, tmp_path: Path
) -> None:
    # Creates and deletes read their answer without decoding it; the connection must still go
    # back to the pool, or every call would open a new one.
    targets = [
        GrantTarget(f"g{i:025d}", "payments", "exec", "apikey:a", datetime.now(UTC) + timedelta(1))
        for i in range(8)
    ]
    async with CountingForwarder(kubesim.url) as forwarder:
        config = kubeconfig_for_server(Path(kubesim.admin_kubeconfig), forwarder.url, tmp_path)
        cluster = await cluster_client(config, max_concurrency=3)
        try:
            for target in targets:
                await asyncio.gather(
                    cluster.create_service_account(target),
                    cluster.create_role(target, profile_rules("exec", ["web-0"])),
                )
                await cluster.create_role_binding(target)
            await asyncio.gather(
                *(cluster.delete_grant_objects(t.grant_id, "payments") for t in targets)
            )
        finally:
            await cluster.aclose()
    calls = [r for r in kubesim.requests() if r["verb"] in ("create", "delete")]
    assert [r["status"] for r in calls] == [201] * 24 + [200] * 24
    assert 1 <= forwarder.connections <= 3  # 48 calls over the pool's 3 connections


def kubeconfig_for_server(admin_kubeconfig: Path, server: str, directory: Path) -> Path:
    document = yaml.safe_load(admin_kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = server
    path = directory / "forwarded.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


class CountingForwarder:
    """Forwards TCP connections to an HTTP API server, counting how many were opened."""

    def __init__(self, upstream: str) -> None:
        parsed = urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

"""Scenario 4: many callers at once. Concurrent clients run the whole grant story (create,
read, list, fetch a kubeconfig, revoke) against a real `scangate serve` on PostgreSQL, with a
cluster that answers each call after some latency. No answer may be a 5xx; the server's memory
stays bounded; latency percentiles are reported."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import (
    Outcomes,
    ServeProcess,
    assert_invariant,
    audit,
    percentile,
    write_config,
)
from tests.support.figures import RecordFigures
from tests.support.run_sizes import Mode
from tests.support.scangate import scangate_config

# Generous: the service idles near 100 MiB; the bound catches a leak that grows per request.
RSS_LIMIT_BYTES = 600 * 1024 * 1024
CALLERS = ("alice", "bob")


async def client_loop(
    http: httpx.AsyncClient, who: str, api_key: str, until: float, outcomes: Outcomes
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}

    async def call(what: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            outcomes.transport_errors += 1
            outcomes.violations.append(f"{what}: {type(exc).__name__}")
            return None
        outcomes.check(response, what, time.perf_counter() - started)
        return response

    while time.monotonic() < until:
        created = await call("create", "POST", "/v1/grants",
                             json={"namespace": "payments", "pods": ["web-0", "web-1"],
                                   "scanner": "exec"})  # fmt: skip
        if created is None or created.status_code != 201:
            await asyncio.sleep(0.1)
            continue
        grant_id = created.json()["id"]
        await call("get", "GET", f"/v1/grants/{grant_id}")
        await call("list", "GET", "/v1/grants", params={"limit": 10})
        await call("kubeconfig", "GET", f"/v1/grants/{grant_id}/kubeconfig")
        await call("revoke", "POST", f"/v1/grants/{grant_id}/revoke", json={})
        await call("whoami", "GET", "/v1/whoami")


async def sample_rss(server: ServeProcess, until: float, samples: list[int]) -> None:
    while time.monotonic() < until:
        samples.append(server.rss_bytes())
        await asyncio.sleep(0.5)


def test_concurrent_clients_get_no_5xx_with_bounded_memory(
    mode: Mode,
    tmp_path: Path,
    kubesim: KubesimHandle,
    migrated_postgres_url: str,
    api_keys: dict[str, str],
    figures: RecordFigures,
) -> None:
    config = write_config(
        tmp_path / "scangate.yaml",
        scangate_config(
            kubeconfig=str(kubesim.admin_kubeconfig),
            database_url=migrated_postgres_url,
            api_keys=api_keys,
        ),
    )
    kubesim.set_latency(fixed_ms=5, jitter_ms=20)
    outcomes = Outcomes()
    rss: list[int] = []
    with ServeProcess(config, tmp_path / "serve.log", log_level="warning") as server:
        server.start()
        rss_at_start = server.rss_bytes()

        async def run() -> float:
            # Idle connections are dropped by the client before uvicorn's 5 s keep-alive
            # timeout: otherwise a request sent as the server closes the connection fails
            # on the client side, a race of HTTP/1.1 itself and not the service's doing.
            limits = httpx.Limits(
                max_connections=mode.load_clients,
                max_keepalive_connections=mode.load_clients,
                keepalive_expiry=2.0,
            )

            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
                started = time.monotonic()
                until = started + mode.load_seconds
                await asyncio.gather(
                    sample_rss(server, until, rss),
                    *(
                        client_loop(http, CALLERS[i % 2], api_keys[CALLERS[i % 2]], until, outcomes)
                        for i in range(mode.load_clients)
                    ),
                )
                return time.monotonic() - started

        elapsed = asyncio.run(run())
        rss_at_end = server.rss_bytes()
    result = audit(kubesim, migrated_postgres_url)
    latencies_ms = [s * 1000 for s in outcomes.latencies]
    figures(
        clients=mode.load_clients,
        seconds=round(elapsed, 1),
        **outcomes.summary(),
        requests_per_second=round(outcomes.requests / elapsed, 1),
        grants_created=outcomes.statuses[201],
        transport_errors=outcomes.transport_errors,
        p50_ms=round(percentile(latencies_ms, 0.50), 1),
        p95_ms=round(percentile(latencies_ms, 0.95), 1),
        p99_ms=round(percentile(latencies_ms, 0.99), 1),
        max_ms=round(max(latencies_ms, default=0.0), 1),
        rss_mib_start=round(rss_at_start / 2**20, 1),
        rss_mib_peak=round(max(rss, default=rss_at_end) / 2**20, 1),
        rss_mib_end=round(rss_at_end / 2**20, 1),
        leaks_found=result.leaked_objects,
    )
    assert outcomes.violations == []
    assert outcomes.count(lambda status: status >= 500) == 0
    assert outcomes.statuses[201] > 0
    assert max(rss, default=rss_at_end) < RSS_LIMIT_BYTES
    assert_invariant(result)

"""A reload is atomic: a request reads one configuration generation from start to end, so a
request in flight during a reload finishes entirely under the configuration it began with and
the next one entirely under the new one; never authentication of one with policies of the
other."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from app.reload import LiveConfig, build_generation
from app.settings import Settings
from tests.oidc_issuer import LocalIssuer
from tests.reload.reloadable import running
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


def oidc_policy(name: str, issuer: LocalIssuer) -> dict[str, Any]:
    return {
        "name": name,
        "subjects": [f"oidc:{issuer.url}#repo:acme/payments:*"],
        "namespaces": ["payments"],
        "scanners": ["exec"],
    }


async def test_a_request_in_flight_during_a_reload_finishes_under_the_old_configuration(
    deployment: Deployment, issuer: LocalIssuer
) -> None:
    deployment.reconfigure(
        oidc=[{"issuer": issuer.url, "audience": "scangate"}],
        policies=[*deployment.document["policies"], oidc_policy("oidc-before", issuer)],
    )
    # The issuer holds its JWKS answer until released: the request is then suspended
    # between its authentication starting and its policies being read.
    release, holding = threading.Event(), threading.Event()
    serve_document = issuer.document

    def held_document(path: str) -> dict[str, Any] | None:
        if path == "/jwks":
            holding.set()
            release.wait(timeout=30)
        return serve_document(path)

    issuer.document = held_document  # type: ignore[method-assign]
    token = issuer.token()
    async with running(deployment) as app:
        headers = {"Authorization": f"Bearer {token}"}
        in_flight = asyncio.create_task(app.http.get("/v1/whoami", headers=headers))
        assert await asyncio.to_thread(holding.wait, 30)
        deployment.reconfigure(
            policies=[*deployment.document["policies"][:2], oidc_policy("oidc-after", issuer)],
            api_keys=[k for k in deployment.document["api_keys"] if k["name"] != "alice"],
        )
        report = await app.reloader.reload("test")
        assert (report.outcome, report.generation) == ("applied", 2)
        release.set()

        old = await in_flight
        new = await app.http.get("/v1/whoami", headers=headers)
        alice = await app.http.get("/v1/whoami", headers=app.auth("alice"))

    assert old.status_code == 200, old.text
    assert [p["name"] for p in old.json()["policies"]] == ["oidc-before"]
    assert new.status_code == 200, new.text
    assert [p["name"] for p in new.json()["policies"]] == ["oidc-after"]
    assert alice.status_code == 401


async def test_a_pinned_context_keeps_its_generation_while_others_see_the_new_one() -> None:
    first = build_generation(Settings(sidecar_container="before"))
    live = LiveConfig(first)
    pinned_reads: list[int] = []
    swapped = asyncio.Event()

    async def request() -> None:
        unpin = live.pin()
        try:
            pinned_reads.append(live.current().number)
            await swapped.wait()
            pinned_reads.append(live.current().number)
        finally:
            unpin()
        pinned_reads.append(live.current().number)

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    live.swap(build_generation(Settings(sidecar_container="after"), first))
    swapped.set()
    await task

    assert pinned_reads == [1, 1, 2]
    assert live.current().settings.sidecar_container == "after"
    other = LiveConfig(build_generation(Settings(sidecar_container="other")))
    unpin = live.pin()
    try:
        assert other.current().settings.sidecar_container == "other"  # pins are per holder
    finally:
        unpin()

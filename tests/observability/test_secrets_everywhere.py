"""A Kubernetes token and an API key pushed through every input a caller controls (headers,
query strings, bodies, paths) never come back in a response and never reach the log records,
the formatted log lines or the database."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support.cluster_view import token_of
from tests.support.logs import LogCapture
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


def header_inputs(secret: str) -> dict[str, str]:
    return {
        "X-Request-ID": secret,
        "User-Agent": secret,
        "X-Forwarded-For": secret,
        "Referer": secret,
        "Cookie": f"session={secret}",
        "X-Api-Key": secret,
    }


def query_inputs(secret: str, grant_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    every_filter = {
        "status": secret,
        "namespace": secret,
        "cluster": secret,
        "cursor": secret,
        "limit": secret,
        secret: secret,
    }
    return [
        ("alice", "/v1/grants", every_filter),
        ("alice", f"/v1/grants/{grant_id}/kubeconfig", {"format": secret}),
        ("alice", f"/v1/grants/{grant_id}/events", {secret: "1"}),
        ("root", "/v1/events", {"since": secret, "cursor": secret, "limit": secret}),
        ("root", "/v1/events", {"since": "2025-01-01T00:00:00Z", "cursor": secret}),
        ("alice", "/v1/whoami", {"debug": secret}),
        ("alice", "/healthz", {"probe": secret}),
        ("alice", "/metrics", {"name": secret}),
        ("alice", "/docs", {"url": secret}),
    ]


def body_inputs(secret: str) -> list[dict[str, Any]]:
    valid = {"namespace": "payments", "pods": ["web-0"], "scanner": "exec"}
    return [
        {**valid, "namespace": secret},
        {**valid, "pods": [secret]},
        {"namespace": "payments", "selector": secret, "scanner": "exec"},
        {"namespace": "payments", "selector": f"app={secret}", "scanner": "exec"},
        {**valid, "scanner": secret},
        {**valid, "cluster": secret},
        {**valid, "ttl_seconds": secret},
        {**valid, "reason": secret},
        {**valid, "reason": f"scan for ticket 42 with {secret}"},
        {**valid, secret: "x"},
        {**valid, "extra": secret},
    ]


def path_inputs(secret: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v1/grants/{secret}"),
        ("GET", f"/v1/grants/{secret}/kubeconfig"),
        ("GET", f"/v1/grants/{secret}/events"),
        ("POST", f"/v1/grants/{secret}/renew"),
        ("POST", f"/v1/grants/{secret}/revoke"),
        ("GET", f"/{secret}"),
        ("GET", f"/v1/{secret}"),
        ("DELETE", f"/v1/grants/{secret}"),
        ("GET", f"/docs/assets/{secret}"),
    ]


async def push_everywhere(scangate: Scangate, secret: str, grant_id: str) -> list[httpx.Response]:
    http, alice = scangate.http, scangate.auth("alice")
    responses = [
        await http.get("/v1/whoami", headers={**alice, **header_inputs(secret)}),
        await http.get("/v1/grants", headers={"Authorization": f"Bearer {secret}x"}),
        await http.get("/v1/grants", headers={"Authorization": f"Basic {secret}"}),
        await http.get("/v1/grants", headers={"Authorization": secret}),
    ]
    for who, path, params in query_inputs(secret, grant_id):
        responses.append(await http.get(path, params=params, headers=scangate.auth(who)))
    for body in body_inputs(secret):
        responses.append(await http.post("/v1/grants", json=body, headers=alice))
    responses += [
        await http.post(
            "/v1/grants",
            content=f'{{"namespace": "{secret}", "pods": [',
            headers={**alice, "Content-Type": "application/json"},
        ),
        await http.post(
            "/v1/grants", content=secret, headers={**alice, "Content-Type": "text/plain"}
        ),
        await http.post(
            f"/v1/grants/{grant_id}/renew", json={"ttl_seconds": secret}, headers=alice
        ),
        await http.post(f"/v1/grants/{grant_id}/renew", json={secret: 60}, headers=alice),
        await http.post(f"/v1/grants/{grant_id}/revoke", json={"reason": secret}, headers=alice),
        await http.post(f"/v1/grants/{grant_id}/revoke", json={secret: "x"}, headers=alice),
    ]
    for method, path in path_inputs(secret):
        responses.append(await http.request(method, path, headers=alice))
    return responses


def everything_sent_back(responses: list[httpx.Response]) -> str:
    return "\n".join(f"{r.status_code} {dict(r.headers)!r}\n{r.text}" for r in responses)


async def dump_database(scangate: Scangate) -> str:
    rows: list[str] = []
    async with scangate.services.db.session() as session:
        for table in ("grants", "grant_events"):
            result = await session.execute(text(f"SELECT * FROM {table}"))
            rows += [repr(tuple(row)) for row in result]
    return "\n".join(rows)


async def test_token_and_api_key_in_every_input_are_never_echoed_logged_or_stored(
    scangate: Scangate, api_keys: dict[str, str], json_logs: LogCapture
) -> None:
    grant = await scangate.grant(reason="nightly scan")
    token = token_of((await scangate.kubeconfig(grant["id"])).text)
    secrets = {"a Kubernetes token": token, "an API key": api_keys["alice"]}

    responses: list[httpx.Response] = []
    for secret in secrets.values():
        responses += await push_everywhere(scangate, secret, grant["id"])

    sent_back = everything_sent_back(responses)
    database = await dump_database(scangate)
    # The search must look at real content: errors were answered, records were written.
    assert {r.status_code for r in responses} >= {200, 401, 404, 422}
    assert grant["id"] in database
    assert json_logs.kept
    assert len(json_logs.by_logger("scangate.access")) == len(responses) + 2
    for what, secret in secrets.items():
        # A JWT's signature alone is as good as the whole token.
        for needle in {secret, secret.rsplit(".", 1)[-1]}:
            assert needle not in sent_back, f"{what} is echoed in a response"
            assert needle not in json_logs.raw, f"{what} reaches a log record"
            assert needle not in json_logs.text, f"{what} is in the log output"
            assert needle not in database, f"{what} is stored in the database"
    assert (await scangate.get(grant["id"])).json()["status"] == "active"


async def test_credential_in_free_text_is_refused_not_stored(
    scangate: Scangate, api_keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await scangate.create(reason=f"debugging, key is {api_keys['bob']}")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.reason"
    assert api_keys["bob"] not in response.text
    assert api_keys["bob"] not in await dump_database(scangate)

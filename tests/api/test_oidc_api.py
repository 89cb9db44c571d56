"""OIDC ID tokens through the HTTP API: a CI job's token requests a grant on kubesim, policy
claims decide, the audit trail records the claims that matched, and bad tokens are 401
problems that never echo the token."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.auth import generate_api_key, hash_api_key
from app.db.engine import run_migrations
from app.main import create_app
from app.settings import Settings
from kubesim.pytest_plugin import KubesimHandle
from tests.oidc_issuer import LocalIssuer, running_issuer

pytestmark = pytest.mark.anyio

SUBJECT = "repo:acme/payments:ref:refs/heads/main"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with running_issuer() as running:
        yield running


def settings_for(issuer: LocalIssuer, database_url: str, kubeconfig: str, **extra: Any) -> Settings:
    document: dict[str, Any] = {
        "database_url": database_url,
        "clusters": [{"name": "default", "kubeconfig": kubeconfig}],
        "oidc": [{"issuer": issuer.url, "audience": "scangate"}],
        "policies": [
            {
                "name": "payments-main",
                "subjects": [f"oidc:{issuer.url}#repo:acme/payments:*"],
                "namespaces": ["payments"],
                "scanners": ["exec"],
                "claims": {"repository": "acme/payments", "ref": ["refs/heads/main", "v*"]},
            },
            {
                "name": "payments-prod-debug",
                "subjects": [f"oidc:{issuer.url}#repo:acme/payments:*"],
                "namespaces": ["payments"],
                "scanners": ["debug"],
                "claims": {"environment": "production"},
            },
        ],
        "reaper": {"enabled": False},
    }
    document.update(extra)
    return Settings(**document)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, start_reaper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scangate.test", timeout=30
        ) as http:
            yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(
    issuer: LocalIssuer, sqlite_url: str, kubesim_tls: KubesimHandle
) -> AsyncIterator[httpx.AsyncClient]:
    run_migrations(sqlite_url)
    async with serving(settings_for(issuer, sqlite_url, str(kubesim_tls.admin_kubeconfig))) as http:
        yield http


async def test_ci_token_gets_a_grant_and_the_audit_records_the_matched_claims(
    issuer: LocalIssuer, database_url: str, kubesim_tls: KubesimHandle
) -> None:
    run_migrations(database_url)
    token = issuer.token()
    settings = settings_for(issuer, database_url, str(kubesim_tls.admin_kubeconfig))
    async with serving(settings) as http:
        created = await http.post(
            "/v1/grants",
            headers=bearer(token),
            json={"namespace": "payments", "pods": ["web-0"], "scanner": "exec"},
        )
        assert created.status_code == 201, created.text
        grant = created.json()
        kubeconfig = await http.get(f"/v1/grants/{grant['id']}/kubeconfig", headers=bearer(token))
        revoked = await http.post(f"/v1/grants/{grant['id']}/revoke", headers=bearer(token))
        events = await http.get(f"/v1/grants/{grant['id']}/events", headers=bearer(token))

    assert grant["requester"] == f"oidc:{issuer.url}#{SUBJECT}"
    assert grant["policy"] == "payments-main"
    assert kubeconfig.status_code == 200
    assert revoked.json()["status"] == "revoked"
    requested = events.json()["items"][0]
    assert requested["type"] == "requested"
    assert requested["actor"] == f"oidc:{issuer.url}#{SUBJECT}"
    assert requested["detail"]["claims"] == {
        "repository": "acme/payments",
        "ref": "refs/heads/main",
    }


async def test_claims_that_do_not_match_are_a_policy_denial(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.post(
        "/v1/grants",
        headers=bearer(issuer.token(environment="staging")),
        json={"namespace": "payments", "pods": ["web-0"], "scanner": "debug"},
    )

    assert response.status_code == 403
    problem = response.json()
    assert problem["type"] == "https://scangate.dev/problems/policy-denied"
    assert "scanner" in problem["detail"]


async def test_a_feature_branch_token_matches_no_policy(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(
        sub="repo:acme/payments:ref:refs/heads/feature", ref="refs/heads/feature", environment=None
    )

    response = await api.post(
        "/v1/grants",
        headers=bearer(token),
        json={"namespace": "payments", "pods": ["web-0"], "scanner": "exec"},
    )

    assert response.status_code == 403
    assert "environment, ref" in response.json()["detail"]


async def test_whoami_shows_the_tokens_claims_and_the_policies_they_satisfy(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/v1/whoami", headers=bearer(issuer.token()))

    assert response.status_code == 200
    body = response.json()
    assert body["principal"] == f"oidc:{issuer.url}#{SUBJECT}"
    assert body["kind"] == "oidc"
    assert body["claims"]["repository"] == "acme/payments"
    assert [p["name"] for p in body["policies"]] == ["payments-main", "payments-prod-debug"]
    assert body["policies"][1]["claims"] == {"environment": ["production"]}


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda i: i.token(aud="https://github.com/acme"), id="wrong-audience"),
        pytest.param(lambda i: i.token(exp=int(time.time()) - 120), id="expired"),
        pytest.param(lambda i: i.token(nbf=int(time.time()) + 600), id="not-yet-valid"),
        pytest.param(lambda i: i.unsigned_token(), id="alg-none"),
        pytest.param(lambda i: i.hs256_token_with_public_key(i.published[0]), id="hs256"),
    ],
)
async def test_bad_tokens_are_401_problems_that_never_echo_the_token(
    api: httpx.AsyncClient,
    issuer: LocalIssuer,
    caplog: pytest.LogCaptureFixture,
    make_token: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_token(issuer)

    response = await api.get("/v1/whoami", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == 'Bearer realm="scangate", error="invalid_token"'
    assert token not in response.text
    assert token not in caplog.text


async def test_unreachable_issuer_is_a_503_the_pipeline_can_retry(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    issuer.available = False

    response = await api.get("/v1/whoami", headers=bearer(issuer.token()))

    assert response.status_code == 503
    assert response.json()["type"] == "https://scangate.dev/problems/oidc-issuer-unavailable"
    assert int(response.headers["retry-after"]) >= 1


async def test_api_keys_keep_working_beside_oidc(
    issuer: LocalIssuer, sqlite_url: str, kubesim_tls: KubesimHandle
) -> None:
    key, digest = generate_api_key()
    assert digest == hash_api_key(key)
    settings = settings_for(
        issuer,
        sqlite_url,
        str(kubesim_tls.admin_kubeconfig),
        api_keys=[{"name": "legacy", "sha256": digest}],
    )
    run_migrations(sqlite_url)
    async with serving(settings) as http:
        response = await http.get("/v1/whoami", headers=bearer(key))

    assert response.status_code == 200
    assert response.json()["principal"] == "apikey:legacy"
    assert "claims" not in response.json()
    assert issuer.requests == []  # an API key never makes scangate call the issuer

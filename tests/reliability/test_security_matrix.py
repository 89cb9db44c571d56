"""Scenario 6: who may do what. Every documented endpoint against every kind of caller (none,
a bad credential, the owner, another principal, an admin); what issued credentials can do in
the cluster (`kubectl auth can-i` against the HTTPS kubesim); how fast revoked and expired
tokens die; that no token or key rests in the database files or the logs; and the per-principal
rate limit."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import in_process
from tests.support.cluster_view import token_of, token_status
from tests.support.figures import RecordFigures
from tests.support.kubectl import kubectl
from tests.support.scangate import Deployment, Scangate, scangate_config

# A revoked or expired grant's token is *denied*: 401 once its ServiceAccount is gone and the
# apiserver's token cache (10 s) has let go of it, 403 while a cached authentication meets the
# deleted RoleBinding. A real cluster gives either; a test must not assume which.
DENIED = (401, 403)

pytestmark = pytest.mark.anyio

# Every endpoint of the OpenAPI document and who may use it. A new endpoint fails the first
# test until it is placed here, so no route escapes the matrix.
PUBLIC, ANY, OWNER, REQUESTER, ADMIN = "public", "any", "owner", "requester", "admin"
# A policy's approvers only (tests/api/test_grants_approvals.py): this deployment's policies ask
# for no approval, so nobody may decide on its grants.
APPROVER = "approver"
ENDPOINTS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/v1/whoami"): ANY,
    ("POST", "/v1/grants"): ANY,
    ("GET", "/v1/grants"): ANY,
    ("GET", "/v1/grants/{grant_id}"): OWNER,
    ("GET", "/v1/grants/{grant_id}/events"): OWNER,
    ("POST", "/v1/grants/{grant_id}/revoke"): OWNER,
    ("GET", "/v1/grants/{grant_id}/kubeconfig"): REQUESTER,
    ("POST", "/v1/grants/{grant_id}/renew"): REQUESTER,
    ("POST", "/v1/grants/{grant_id}/approve"): APPROVER,
    ("POST", "/v1/grants/{grant_id}/deny"): APPROVER,
    ("GET", "/v1/events"): ADMIN,
}
BODIES: dict[str, Any] = {
    "/v1/grants": {"namespace": "payments", "pods": ["web-0"], "scanner": "exec"},
    "/v1/grants/{grant_id}/renew": {"ttl_seconds": 600},
    "/v1/grants/{grant_id}/revoke": {},
    "/v1/grants/{grant_id}/approve": {},
    "/v1/grants/{grant_id}/deny": {"reason": "not now"},
}
UNKNOWN_ID = "01jbq3z5ksxn2m8d7c4v6w9e0r"


@pytest.fixture
def deployment(
    tmp_path: Path, kubesim_tls: KubesimHandle, migrated_sqlite_url: str, api_keys: dict[str, str]
) -> Deployment:
    document = scangate_config(
        kubeconfig=str(kubesim_tls.admin_kubeconfig),
        database_url=migrated_sqlite_url,
        api_keys=api_keys,
    )
    return Deployment(tmp_path, api_keys, document)


async def call(
    scangate: Scangate, method: str, template: str, grant_id: str, headers: dict[str, str]
) -> httpx.Response:
    path = template.replace("{grant_id}", grant_id)
    body = BODIES.get(template) if method == "POST" else None
    return await scangate.http.request(method, path, json=body, headers=headers)


async def test_every_endpoint_answers_each_kind_of_caller_as_the_matrix_says(
    deployment: Deployment, figures: RecordFigures
) -> None:
    async with in_process(deployment) as scangate:
        document = (await scangate.http.get("/openapi.json")).json()
        documented = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if method in ("get", "post", "put", "patch", "delete")
        }
        assert documented == set(ENDPOINTS)
        grant_id = (await scangate.grant("alice"))["id"]
        bad = {
            "no token": {},
            "not bearer": {"Authorization": f"Basic {deployment.api_keys['alice']}"},
            "wrong key": {"Authorization": "Bearer sg_" + "x" * 43},
            "oversized": {"Authorization": "Bearer " + "A" * 9000},
        }
        cells = 0
        # The revoke last, so the grant is still active for the others.
        for (method, template), access in sorted(
            ENDPOINTS.items(), key=lambda e: e[0][1].endswith("/revoke")
        ):
            what = f"{method} {template}"
            if access == PUBLIC:
                response = await call(scangate, method, template, grant_id, {})
                assert response.status_code == 200, what
                cells += 1
                continue
            for kind, headers in bad.items():
                response = await call(scangate, method, template, grant_id, headers)
                assert response.status_code == 401, (what, kind, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer"), what
                assert response.headers["content-type"].startswith("application/problem+json")
                cells += 1
            if access in (OWNER, REQUESTER):
                # Another principal learns nothing: the answer is the unknown-id answer.
                theirs = await call(scangate, method, template, grant_id, scangate.auth("bob"))
                unknown = await call(scangate, method, template, UNKNOWN_ID, scangate.auth("bob"))
                assert theirs.status_code == unknown.status_code == 404, what
                assert theirs.json()["type"] == unknown.json()["type"], what
                as_admin = await call(scangate, method, template, grant_id, scangate.auth("root"))
                expected = 403 if access == REQUESTER else 200
                assert as_admin.status_code == expected, (what, as_admin.text)
                cells += 3
            if access == ADMIN:
                for who in ("alice", "bob", "carol"):
                    response = await call(scangate, method, template, grant_id, scangate.auth(who))
                    assert response.status_code == 403, (what, who)
                    cells += 1
                ok = await call(scangate, method, template, grant_id, scangate.auth("root"))
                assert ok.status_code == 200, what
                cells += 1
            if access == APPROVER:
                # Another principal learns nothing; the requester and an admin are told they
                # are no approvers of the grant's policy.
                theirs = await call(scangate, method, template, grant_id, scangate.auth("bob"))
                unknown = await call(scangate, method, template, UNKNOWN_ID, scangate.auth("bob"))
                assert theirs.status_code == unknown.status_code == 404, what
                assert theirs.json()["type"] == unknown.json()["type"], what
                for who in ("alice", "root"):
                    response = await call(scangate, method, template, grant_id, scangate.auth(who))
                    assert response.status_code == 403, (what, who, response.text)
                    cells += 1
                cells += 2
                continue
            if access != ADMIN and not template.endswith("/revoke"):
                own = await call(scangate, method, template, grant_id, scangate.auth("alice"))
                assert own.status_code in (200, 201), (what, own.text)
                cells += 1
        assert await scangate.status_of(grant_id) == "revoked"  # only by the admin's revoke
    figures(matrix_cells_checked=cells, endpoints=len(ENDPOINTS))


# (allowed?, kubectl auth can-i arguments) for alice's exec grant on payments/web-0, while bob
# holds a grant on payments/web-1.
CAN_I: list[tuple[bool, list[str]]] = [
    (True, ["get", "pods/web-0"]),
    (True, ["create", "pods/web-0", "--subresource=exec"]),
    (True, ["get", "pods/web-0", "--subresource=log"]),
    (False, ["get", "secrets"]),
    (False, ["list", "secrets"]),
    (False, ["get", "secrets/db-credentials"]),
    (False, ["list", "pods"]),
    (False, ["watch", "pods"]),
    (False, ["create", "pods"]),
    (False, ["delete", "pods/web-0"]),
    (False, ["patch", "pods/web-0"]),
    (False, ["create", "pods/web-0", "--subresource=portforward"]),
    (False, ["get", "pods/web-1"]),  # bob's grant's pod
    (False, ["create", "pods/web-1", "--subresource=exec"]),
    (False, ["get", "pods/db-0"]),
    (False, ["get", "pods/api-0", "-n", "orders"]),
    (False, ["get", "pods/web-0", "-n", "orders"]),
    (False, ["list", "pods", "-n", "orders"]),
    (False, ["get", "serviceaccounts", "-n", "scangate-grants"]),
    (False, ["create", "serviceaccounts/token", "-n", "scangate-grants"]),
    (False, ["create", "rolebindings"]),
    (False, ["escalate", "roles"]),
    (False, ["bind", "roles"]),
    (False, ["impersonate", "users"]),
    (False, ["list", "namespaces"]),
    (False, ["get", "nodes"]),
    (False, ["*", "*"]),
]


async def test_issued_credentials_reach_only_the_granted_pods(
    deployment: Deployment, kubesim_tls: KubesimHandle, tmp_path: Path, figures: RecordFigures
) -> None:
    async with in_process(deployment) as scangate:
        mine = await scangate.grant("alice", pods=["web-0"])
        await scangate.grant("bob", pods=["web-1"])
        kubeconfig = tmp_path / "alice.kubeconfig"
        kubeconfig.write_text((await scangate.kubeconfig(mine["id"])).text)

    def can_i(args: list[str]) -> tuple[list[str], bool, str]:
        namespace = [] if "-n" in args else ["-n", "payments"]
        result = kubectl(kubeconfig, "auth", "can-i", *args, *namespace)
        return args, result.returncode == 0, result.stdout.strip() + result.stderr.strip()

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(can_i, [args for _, args in CAN_I]))
    wrong = [
        (args, said)
        for (allowed, _), (args, yes, said) in zip(CAN_I, answers, strict=True)
        if yes != allowed
    ]
    token = token_of(kubeconfig.read_text())
    direct = {
        "/api/v1/namespaces/payments/pods/web-0": 200,
        "/api/v1/namespaces/payments/pods/web-1": 403,
        "/api/v1/namespaces/payments/pods": 403,
        "/api/v1/namespaces/payments/secrets": 403,
        "/api/v1/namespaces/orders/pods/api-0": 403,
    }
    seen = {path: token_status(kubesim_tls, token, path) for path in direct}
    figures(
        can_i_checks=len(CAN_I), direct_requests=len(direct), wrongly_allowed_or_denied=len(wrong)
    )
    assert wrong == []
    assert seen == direct


async def test_tokens_die_within_a_second_of_revocation_and_of_expiry(
    deployment: Deployment, kubesim_tls: KubesimHandle, figures: RecordFigures
) -> None:
    async def seconds_until_rejected(token: str) -> float:
        started = time.monotonic()
        while token_status(kubesim_tls, token) not in DENIED:
            assert time.monotonic() - started < 5, "the token still works"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async with in_process(deployment) as scangate:
        revoked = await scangate.grant("alice")
        expiring = await scangate.grant("alice")
        tokens = {}
        for grant in (revoked, expiring):
            tokens[grant["id"]] = token_of((await scangate.kubeconfig(grant["id"])).text)
            assert token_status(kubesim_tls, tokens[grant["id"]]) == 200

        started = time.monotonic()
        assert (await scangate.revoke(revoked["id"])).json()["status"] == "revoked"
        after_revoke = (
            time.monotonic() - started + await seconds_until_rejected(tokens[revoked["id"]])
        )
        started = time.monotonic()
        await scangate.expire_soon(expiring["id"])
        after_expiry = (
            time.monotonic() - started + await seconds_until_rejected(tokens[expiring["id"]])
        )
    figures(
        seconds_to_reject_after_revoke=round(after_revoke, 3),
        seconds_to_reject_after_expiry=round(after_expiry, 3),
    )
    assert after_revoke < 1.0
    assert after_expiry < 1.0


async def test_no_token_or_key_rests_in_the_database_files_or_the_logs(
    deployment: Deployment,
    kubesim_tls: KubesimHandle,
    migrated_sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    figures: RecordFigures,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with in_process(deployment) as scangate:
        grant = await scangate.grant("alice", reason="nightly scan")
        tokens = [token_of((await scangate.kubeconfig(grant["id"])).text) for _ in range(3)]
        # Failures are where secrets slip into logs: a refused mint, a wrong key, a key pasted
        # into a field, a failed revocation.
        kubesim_tls.inject_fault(status=500, resources=["serviceaccounts/token"])
        assert (await scangate.kubeconfig(grant["id"])).status_code == 503
        kubesim_tls.clear_faults()
        wrong = deployment.api_keys["bob"][:-3] + "zzz"
        await scangate.http.get("/v1/grants", headers={"Authorization": f"Bearer {wrong}"})
        await scangate.create("alice", reason=deployment.api_keys["alice"])
        await scangate.create("alice", reason=f"token {tokens[0]}")
        kubesim_tls.inject_fault(status=503, methods=["DELETE"])
        assert (await scangate.revoke(grant["id"])).status_code == 202
        kubesim_tls.clear_faults()
        await scangate.wait_for_status(grant["id"], {"revoked"}, within=15)
    secrets = {
        **{f"api key of {who}": key for who, key in deployment.api_keys.items()},
        "wrong api key": wrong,
        **{f"token {i}": token for i, token in enumerate(tokens)},
        "cluster admin token": kubesim_tls.admin_token,
    }
    database = Path(migrated_sqlite_url.removeprefix("sqlite:///"))
    files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    at_rest = b"".join(p.read_bytes() for p in files)
    logs = "\n".join(
        [r.getMessage() for r in caplog.records]
        + [repr(r.args) for r in caplog.records]
        + [repr(r.__dict__) for r in caplog.records]
        + list(capfd.readouterr())
    )
    leaks = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, haystack in (("database files", at_rest), ("logs", logs.encode()))
        if secret.encode() in haystack
    ]
    figures(
        secrets_searched=len(secrets),
        database_files=len(files),
        log_records=len(caplog.records),
        leaks_found=len(leaks),
    )
    assert grant["id"].encode() in at_rest  # the search reads real content
    assert leaks == []


async def test_rate_limit_answers_429_with_retry_after_per_principal(
    deployment: Deployment, figures: RecordFigures
) -> None:
    deployment.reconfigure(rate_limit={"requests_per_minute": 60, "burst": 5})
    async with in_process(deployment) as scangate:
        answers = [await scangate.request("GET", "/v1/whoami", who="alice") for _ in range(8)]
        statuses = [a.status_code for a in answers]
        assert statuses == [200] * 5 + [429] * 3
        limited = answers[-1]
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert limited.json()["type"].endswith("/rate-limited")
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 2
        # Other principals have their own buckets; unauthenticated calls take no token.
        assert (await scangate.request("GET", "/v1/whoami", who="bob")).status_code == 200
        assert (await scangate.http.get("/v1/whoami")).status_code == 401
        assert (await scangate.http.get("/healthz")).status_code == 200
        await asyncio.sleep(retry_after)
        assert (await scangate.request("GET", "/v1/whoami", who="alice")).status_code == 200
        assert (await scangate.request("GET", "/v1/whoami", who="alice")).status_code == 429
    figures(requests=len(answers) + 5, limited=statuses.count(429) + 1)

"""No token and no API key is ever stored or logged: the test runs a full lifecycle, including
failures that get logged, and then searches the whole database and every log record."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from kubesim.pytest_plugin import KubesimHandle
from tests.support.cluster_view import token_of
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


async def dump_database(scangate: Scangate) -> str:
    rows: list[str] = []
    async with scangate.services.db.session() as session:
        for table in ("grants", "grant_events"):
            result = await session.execute(text(f"SELECT * FROM {table}"))
            rows += [repr(tuple(row)) for row in result]
    return "\n".join(rows)


async def test_no_token_or_api_key_reaches_the_database_or_the_logs(
    scangate: Scangate,
    sim: KubesimHandle,
    api_keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    grant = await scangate.grant(reason="scan")
    tokens = [token_of((await scangate.kubeconfig(grant["id"])).text) for _ in range(2)]
    await scangate.request("POST", f"/v1/grants/{grant['id']}/renew", json={"ttl_seconds": 1200})
    # Failures are where secrets leak into logs: a refused token mint, a failed revocation,
    # a request with a wrong key.
    sim.inject_fault(status=500, resources=["serviceaccounts/token"])
    assert (await scangate.kubeconfig(grant["id"])).status_code == 503
    sim.clear_faults()
    sim.inject_fault(status=503, methods=["DELETE"])
    assert (await scangate.revoke(grant["id"])).status_code == 202
    sim.clear_faults()
    assert await scangate.wait_for_status(grant["id"], {"revoked"}, within=15) == "revoked"
    wrong_key = api_keys["alice"][:-4] + "xxxx"
    response = await scangate.http.get(
        "/v1/grants", headers={"Authorization": f"Bearer {wrong_key}"}
    )
    assert response.status_code == 401
    assert wrong_key not in response.text

    database = await dump_database(scangate)
    logs = "\n".join(
        [record.getMessage() for record in caplog.records]
        + [repr(record.args) for record in caplog.records]
        + [str(record.exc_info) for record in caplog.records if record.exc_info]
        + list(capfd.readouterr())
    )
    assert grant["id"] in database  # the search looks at real content
    assert caplog.records  # ... and at real log records
    secrets = {f"token {i}": token for i, token in enumerate(tokens)}
    secrets |= {f"API key of {name}": key for name, key in api_keys.items()}
    secrets["the rejected API key"] = wrong_key
    for what, secret in secrets.items():
        assert secret not in database, f"{what} is stored in the database"
        assert secret not in logs, f"{what} appears in the logs"
        # A JWT's signature alone is as good as leaking it whole.
        tail = secret.rsplit(".", 1)[-1]
        assert tail not in database
        assert tail not in logs

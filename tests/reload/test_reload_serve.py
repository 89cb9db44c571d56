"""`scangate serve` reloads its configuration file on SIGHUP (SQLite and PostgreSQL) and, where
the platform changes the file under it, on its own (a ConfigMap volume's `..data` swap)."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.auth import generate_api_key
from app.db.engine import Database, run_migrations
from app.db.models import Grant
from kubesim.pytest_plugin import KubesimHandle
from kubesim.tls import generate
from tests.guard.admission_reviews import ephemeral_review, restricted_debug_container
from tests.reload.served import Served, free_port
from tests.support.grant_rows import grant_row, insert_grants


def configuration(
    database_url: str, kubesim: KubesimHandle, keys: dict[str, str], namespaces: list[str]
) -> dict[str, Any]:
    """API keys `keys` (name -> hash), each allowed to exec into `namespaces`."""
    return {
        "database_url": database_url,
        "clusters": [{"name": "default", "kubeconfig": str(kubesim.admin_kubeconfig)}],
        "api_keys": [{"name": name, "sha256": digest} for name, digest in keys.items()],
        "policies": [
            {
                "name": "ci",
                "subjects": [f"apikey:{name}" for name in keys],
                "namespaces": namespaces,
                "scanners": ["exec"],
            }
        ],
        "reaper": {"enabled": False},
        "config_watch_seconds": 0,  # SIGHUP only, unless a test says otherwise
    }


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for server in started:
        server.stop()


def test_sighup_reloads_keys_and_policies_and_refuses_a_broken_file(
    tmp_path: Path, kubesim: KubesimHandle, database_url: str, served: list[Served]
) -> None:
    run_migrations(database_url)
    old_key, old_hash = generate_api_key()
    new_key, new_hash = generate_api_key()
    config = tmp_path / "scangate.yaml"
    old = configuration(database_url, kubesim, {"old": old_hash}, ["payments"])
    old["reaper"] = {"enabled": True}
    config.write_text(yaml.safe_dump(old))
    server = Served(config, tmp_path / "serve.log")
    served.append(server)
    assert server.get("/v1/whoami", old_key).status_code == 200
    granted = server.post("/v1/grants", old_key, {"namespace": "payments", "pods": ["web-0"],
                                                  "scanner": "exec"})  # fmt: skip
    assert granted.status_code == 201, granted.text

    new = configuration(database_url, kubesim, {"new": new_hash}, ["orders"])
    new["reaper"] = old["reaper"]
    config.write_text(yaml.safe_dump(new))
    health = server.hangup_and_wait("applied")
    # The grant in payments is no longer allowed: the reaper, woken by the reload, ends it.
    deadline = time.monotonic() + 15
    while (status := asyncio.run(status_of(database_url, granted.json()["id"]))) == "active":
        assert time.monotonic() < deadline, "the reload did not end the disallowed grant"
        time.sleep(0.2)
    assert status == "revoked"

    assert health["config"]["generation"] == 2
    assert health["config"]["last_reload"]["trigger"] == "SIGHUP"
    whoami = server.get("/v1/whoami", new_key)
    assert whoami.status_code == 200
    assert [p["namespaces"] for p in whoami.json()["policies"]] == [["orders"]]
    assert server.get("/v1/whoami", old_key).status_code == 401
    denied = server.post("/v1/grants", new_key, {"namespace": "payments", "pods": ["web-0"],
                                                 "scanner": "exec"})  # fmt: skip
    assert (denied.status_code, denied.json()["denied"]) == (403, "namespace")

    config.write_text("policies:\n  - name: [unclosed\n")
    health = server.hangup_and_wait("refused")

    assert health["config"]["generation"] == 2
    assert health["config"]["last_reload"]["problems"] == ["(file)"]
    assert server.get("/v1/whoami", new_key).status_code == 200

    new["policies"][0]["max_ttl_seconds"] = 5
    config.write_text(yaml.safe_dump(new))
    health = server.hangup_and_wait("refused")

    assert health["config"]["last_reload"]["problems"] == ["policies[0].max_ttl_seconds"]
    whoami = server.get("/v1/whoami", new_key)
    assert [p["max_ttl_seconds"] for p in whoami.json()["policies"]] == [3600]

    log = server.stop()
    assert server.process.returncode == 0  # SIGHUP never ended the process
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    audit = [
        r["audit"] for r in records
        if r["logger"] == "scangate.audit" and r["audit"]["actor"] == "system"
    ]  # fmt: skip
    grant_audit = [r["audit"] for r in records if r["logger"] == "scangate.audit"]
    assert [a["type"] for a in grant_audit if a.get("grant_id") == granted.json()["id"]] == [
        "requested", "activated", "revoking", "revoked",
    ]  # fmt: skip
    assert [a["type"] for a in audit] == [
        "config_reloaded", "config_reload_refused", "config_reload_refused",
    ]  # fmt: skip
    assert {a["actor"] for a in audit} == {"system"}
    assert audit[0]["detail"]["changed"]["api_keys"] == {
        "added": 1, "removed": 1, "changed": 0,
        "names": {"added": ["new"], "removed": ["old"], "changed": []},
    }  # fmt: skip
    refusals = [r for r in records if r["level"] == "ERROR" and "refused" in r["message"]]
    assert "not valid YAML at line 3" in refusals[0]["message"]
    assert "policies[0].max_ttl_seconds" in refusals[1]["message"]
    for secret in (old_key, new_key, old_hash, new_hash):
        assert secret not in log


def configmap_volume(directory: Path, content: str) -> Path:
    """A directory laid out as the kubelet writes a ConfigMap volume: the data in a timestamped
    directory, `..data` pointing at it, and the file a symlink through `..data`."""
    directory.mkdir()
    swap_configmap(directory, content, "..2026_12_04_18_00_00.000000001")
    (directory / "scangate.yaml").symlink_to("..data/scangate.yaml")
    return directory / "scangate.yaml"


def swap_configmap(directory: Path, content: str, version: str) -> None:
    """The kubelet's update: write a new version, then rename a new `..data` link over the old
    one (one atomic rename; readers see the old file or the new, never a mix)."""
    (directory / version).mkdir()
    (directory / version / "scangate.yaml").write_text(content)
    (directory / "..data_tmp").symlink_to(version)
    os.replace(directory / "..data_tmp", directory / "..data")


def test_a_configmap_update_is_reloaded_without_a_signal(
    tmp_path: Path, kubesim: KubesimHandle, sqlite_url: str, served: list[Served]
) -> None:
    run_migrations(sqlite_url)
    old_key, old_hash = generate_api_key()
    new_key, new_hash = generate_api_key()
    document = configuration(sqlite_url, kubesim, {"old": old_hash}, ["payments"])
    document["config_watch_seconds"] = 0.2
    config = configmap_volume(tmp_path / "config", yaml.safe_dump(document))
    server = Served(config, tmp_path / "serve.log")
    served.append(server)
    assert server.get("/v1/whoami", old_key).status_code == 200

    document["api_keys"] = [{"name": "new", "sha256": new_hash}]
    document["policies"][0]["subjects"] = ["apikey:new"]
    swap_configmap(tmp_path / "config", yaml.safe_dump(document), "..2026_12_04_18_05_00.000000002")

    server.wait_for(lambda: server.get("/v1/whoami", new_key).status_code == 200,
                    what="the new key to be accepted")  # fmt: skip
    assert server.get("/v1/whoami", old_key).status_code == 401
    last = server.health()["config"]["last_reload"]
    assert (last["trigger"], last["outcome"]) == ("file changed", "applied")

    swap_configmap(tmp_path / "config", "api_keys: {", "..2026_12_04_18_10_00.000000003")
    server.wait_for(lambda: server.reloads("refused") == 1, what="the broken file refused")
    time.sleep(1.0)  # five more polls of the unchanged broken file

    assert server.reloads("refused") == 1  # refused once, not at every poll
    assert server.get("/v1/whoami", new_key).status_code == 200


def test_sighup_reloads_the_guard_listener_beside_the_api(
    tmp_path: Path, kubesim: KubesimHandle, sqlite_url: str, served: list[Served]
) -> None:
    run_migrations(sqlite_url)
    ca_pem, cert_pem, key_pem = generate("127.0.0.1")
    (tmp_path / "tls.crt").write_bytes(cert_pem)
    (tmp_path / "tls.key").write_bytes(key_pem)
    key, digest = generate_api_key()
    document = configuration(sqlite_url, kubesim, {"alice": digest}, ["payments"])
    document["policies"][0].update(
        name="payments-ci", scanners=["debug"], debug_images=["busybox:1.36"]
    )
    guard_port = free_port()
    document["guard"] = {
        "enabled": True, "host": "127.0.0.1", "port": guard_port,
        "cert_file": str(tmp_path / "tls.crt"), "key_file": str(tmp_path / "tls.key"),
    }  # fmt: skip
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump(document))
    grant = grant_row(scanner="debug", containers=None)
    asyncio.run(store(sqlite_url, grant))
    server = Served(config, tmp_path / "serve.log")
    served.append(server)
    verify = ssl.create_default_context(cadata=ca_pem.decode())
    review = ephemeral_review(grant.service_account, restricted_debug_container())

    def judge() -> dict[str, Any]:
        response = httpx.post(
            f"https://127.0.0.1:{guard_port}/admission/default", json=review, verify=verify
        )
        answer: dict[str, Any] = response.json()["response"]
        return answer

    server.wait_for(lambda: guard_answers(guard_port, verify), what="the guard to answer")
    assert judge()["allowed"] is True

    document["policies"][0]["debug_images"] = ["registry.example/scan:*"]
    config.write_text(yaml.safe_dump(document))
    server.hangup_and_wait("applied")

    refusal = judge()
    assert refusal["allowed"] is False
    assert "registry.example/scan:*" in refusal["status"]["message"]
    assert server.get("/v1/whoami", key).status_code == 200
    server.stop()
    assert server.process.returncode == 0


def guard_answers(port: int, verify: ssl.SSLContext) -> bool:
    try:
        httpx.get(f"https://127.0.0.1:{port}/healthz", verify=verify, timeout=1)
    except httpx.TransportError:
        return False
    return True


async def status_of(database_url: str, grant_id: str) -> str:
    db = Database(database_url)
    try:
        async with db.session() as session:
            grant = await session.get(Grant, grant_id)
            assert grant is not None
            return grant.status.value
    finally:
        await db.dispose()


async def store(database_url: str, grant: Grant) -> None:
    db = Database(database_url)
    try:
        await insert_grants(db, grant)
    finally:
        await db.dispose()

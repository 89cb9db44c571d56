"""A real `scangate serve` killed with SIGKILL while its notifications are undelivered (some of
them in flight): after a restart every event reaches the receiver, exactly once per event id
at a receiver that de-duplicates (the in-flight ones arrive twice: at least once is the
promise). Both databases."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db.urls import sync_database_url
from kubesim.pytest_plugin import KubesimHandle
from tests.notifications.receiver import SECRET, Receiver
from tests.reliability.harness import ServeProcess, write_config
from tests.support.polling import wait_for
from tests.support.scangate import scangate_config

NOTIFIED_TYPES = ("requested", "activated", "revoked")
# Like a Slack webhook's path: the URL is a credential and must never reach the log.
URL_SECRET = "/services/T000/B000/url-secret-4f3a"


def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(sync_database_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def outbox_rows(database_url: str) -> int:
    [(count,)] = query(database_url, "SELECT count(*) FROM notification_outbox")
    return int(str(count))


def test_kill_9_with_undelivered_notifications_loses_none(
    tmp_path: Path, kubesim: KubesimHandle, migrated_url: str, api_keys: dict[str, str]
) -> None:
    receiver = Receiver(secret=SECRET.encode(), hang_limit=60)
    receiver.hanging.set()  # nothing is answered until the server has been killed
    receiver.start()
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig), database_url=migrated_url, api_keys=api_keys,
        notifications=[{"name": "audit-sink", "url": receiver.url + URL_SECRET, "secret": SECRET,
                        "timeout_seconds": 3, "retry_max_seconds": 1}],
    )  # fmt: skip
    server = ServeProcess(write_config(tmp_path / "serve.yaml", document), tmp_path / "serve.log")
    headers = {"Authorization": f"Bearer {api_keys['alice']}"}
    try:
        server.start()
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            grant_ids = []
            for n in range(4):
                created = http.post(
                    "/v1/grants", json={"namespace": "payments", "pods": ["web-0"],
                                        "scanner": "exec"},
                )  # fmt: skip
                assert created.status_code == 201, created.text
                grant_ids.append(created.json()["id"])
                if n % 2 == 0:
                    revoked = http.post(f"/v1/grants/{grant_ids[-1]}/revoke", json={})
                    assert revoked.json()["status"] == "revoked"
        # The worker has POSTs in flight that the receiver holds: kill it now.
        assert wait_for(lambda: receiver.hung >= 1, within=10)
        server.kill()
        undelivered = outbox_rows(migrated_url)
        assert undelivered == 4 + 4 + 2  # requested, active for each; revoked for two
        # The receiver now answers the requests of the dead server (it cannot tell), so those
        # events arrive once now and once more after the restart. (A moment first, for every
        # request the dead server had sent to reach its handler.)
        time.sleep(0.5)
        in_flight = receiver.hung
        receiver.hanging.clear()

        server.start()
        assert wait_for(lambda: outbox_rows(migrated_url) == 0, within=60), server.log.read_text()
    finally:
        server.stop()
        receiver.stop()

    expected = {
        f"{grant_id}-{event_id}-audit-sink"
        for event_id, grant_id, type_ in query(
            migrated_url, "SELECT id, grant_id, type FROM grant_events"
        )
        if type_ in NOTIFIED_TYPES
    }
    assert len(expected) == undelivered
    assert set(receiver.accepted_ids) == expected  # nothing lost, nothing foreign
    assert len(receiver.accepted_ids) == len(expected)  # each id accepted once
    assert in_flight >= 1
    assert receiver.duplicates == in_flight  # the redeliveries it de-duplicated
    assert all(item.signature_ok for item in receiver.received)
    log = (tmp_path / "serve.log").read_text()
    assert "notification" in log  # the worker did log its failed attempts
    assert URL_SECRET not in log
    assert SECRET not in log
    for grant_id in grant_ids:
        order = [
            r.headers["scangate-event"]
            for r in receiver.received
            if r.document["subject"] == grant_id
        ]
        # Per grant, in order (a redelivered event may repeat where it was).
        deduplicated = list(dict.fromkeys(order))
        assert deduplicated in (["requested", "active"], ["requested", "active", "revoked"])

"""Approvals end to end (issue 19 items 1 and 2): the `scangate` client against the real service
(uvicorn, a migrated SQLite database, kubesim over HTTPS, the real kubectl) whose payments-ci
policy needs approvers. The same paths as tests/cli/test_approvals_{wait,decisions,run}.py, which
run them against a stand-in for the approval endpoints while the service lacks them.

The whole module is skipped, and only then, while the service has no `/approve` route (the
server side of approvals not merged yet): once it has, these run with the rest of the suite.
"""

from __future__ import annotations

import json
import signal
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from app.client.errors import ExitCode
from app.main import create_app
from app.settings import Settings
from tests.support.cli_service import Service, lines
from tests.support.kubectl import kubectl
from tests.support.polling import wait_for


def _route_paths(routes: Iterable[Any]) -> Iterable[str]:
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            yield route.path
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        yield from _route_paths(getattr(included or route, "routes", None) or [])


def _service_has_approvals() -> bool:
    """Whether the service's app routes POST /v1/grants/{id}/approve; building the app opens
    nothing (the database and clusters are opened by its lifespan)."""
    settings = Settings(database_url="sqlite://", clusters=[{"name": "default", "kubeconfig": "-"}])
    app = create_app(settings, start_reaper=False)
    return any(path.endswith("/approve") for path in _route_paths(app.routes))


pytestmark = pytest.mark.skipif(
    not _service_has_approvals(),
    reason="the service has no /approve route yet (issue 19 item 1, the server side, not merged)",
)

TARGET = ("-n", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "10m")


def grant(service: Service, grant_id: str, who: str = "ci") -> dict[str, Any]:
    result = service.scangate("grant", "show", grant_id, "-o", "json", who=who)
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def newest_grant_id(service: Service) -> str:
    """The id of the requester's newest grant, once there is one."""

    def newest() -> str | None:
        listed = service.scangate("grant", "list", "-o", "json")
        items = json.loads(listed.stdout)["items"] if listed.returncode == 0 else []
        return str(items[0]["id"]) if items else None

    assert wait_for(newest, within=60), "no grant was requested"
    found = newest()
    assert found is not None
    return found


def approve(service: Service, grant_id: str, who: str) -> str:
    result = service.scangate("grant", "approve", grant_id, "--reason", "checked", who=who)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_pending_grant_has_no_cluster_object_and_approvers_cannot_fetch_credentials(
    two_person_service: Service,
) -> None:
    service = two_person_service
    requested = service.scangate("grant", "request", *TARGET)
    grant_id = requested.stdout.strip()

    as_approver = service.scangate("grant", "kubeconfig", grant_id, who="alice")
    by_requester = service.scangate("grant", "approve", grant_id, who="ci")
    pending = service.scangate("grant", "list", "--status", "pending_approval", who="alice")

    assert requested.returncode == 0, requested.stderr
    assert f"an approver runs `scangate grant approve {grant_id}`" in requested.stderr
    assert grant(service, grant_id)["status"] == "pending_approval"
    assert service.scangate_objects(grant_id) == []
    assert as_approver.returncode in (ExitCode.DENIED, ExitCode.NOT_FOUND)
    assert by_requester.returncode == ExitCode.DENIED
    assert [line.split()[0] for line in lines(pending.stdout)[1:]] == [grant_id]


def test_request_wait_goes_on_once_two_approvers_approved(
    two_person_service: Service, tmp_path: Path
) -> None:
    service = two_person_service
    kubeconfig = tmp_path / "scan.kubeconfig"
    waiting = service.start(
        "grant", "request", *TARGET, "--wait", "--kubeconfig-out", str(kubeconfig)
    )
    try:
        grant_id = newest_grant_id(service)
        first = approve(service, grant_id, "alice")
        assert waiting.poll() is None
        second = approve(service, grant_id, "bob")
        stdout, stderr = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()

    assert first == f"grant {grant_id}: pending_approval, 1/2 approvals"
    assert second.startswith(f"grant {grant_id}: active, 2/2 approvals")
    assert waiting.returncode == 0, stderr
    assert stdout.strip() == grant_id
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert kubectl(kubeconfig, "get", "pod", "web-0", "-o", "name").stdout.strip() == "pod/web-0"
    assert service.service_account_exists(grant_id)
    events = lines(service.scangate("grant", "events", grant_id).stdout)
    decisions = [line.split()[1:] for line in events if line.split()[1] == "approved"]
    assert decisions == [
        ["approved", "apikey:alice", "1/2", "(checked)"],
        ["approved", "apikey:bob", "2/2", "(checked)"],
    ]


def test_a_denial_exits_9_and_nothing_is_provisioned(two_person_service: Service) -> None:
    service = two_person_service
    waiting = service.start("grant", "request", *TARGET, "--wait")
    try:
        grant_id = newest_grant_id(service)
        denied = service.scangate("grant", "deny", grant_id, "--reason", "freeze", who="bob")
        _, stderr = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()

    assert denied.returncode == 0, denied.stderr
    assert waiting.returncode == ExitCode.APPROVAL_DENIED
    assert f"grant {grant_id} was denied by apikey:bob: freeze" in stderr
    assert grant(service, grant_id)["status"] == "denied"
    assert service.scangate_objects(grant_id) == []


def test_no_decision_before_the_deadline_exits_10(hasty_approval_service: Service) -> None:
    service = hasty_approval_service

    result = service.scangate("grant", "request", *TARGET, "--wait")

    assert result.returncode == ExitCode.APPROVAL_TIMEOUT, result.stderr
    grant_id = newest_grant_id(service)
    assert f"no approval decision for grant {grant_id} before its deadline" in result.stderr
    assert wait_for(lambda: grant(service, grant_id)["status"] == "approval_expired", within=30)
    assert service.scangate_objects(grant_id) == []


def test_ctrl_c_leaves_the_request_pending_and_revoke_cancels_it(
    two_person_service: Service,
) -> None:
    service = two_person_service
    waiting = service.start("grant", "request", *TARGET, "--wait")
    assert waiting.stderr is not None
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(waiting.stderr or []))
    reader.start()
    try:
        # The countdown's first line: the client is in its waiting loop.
        assert wait_for(lambda: any("waiting for approval" in x for x in stderr_lines), within=60)
        grant_id = newest_grant_id(service)
        waiting.send_signal(signal.SIGINT)
        waiting.wait(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        reader.join(timeout=10)

    assert waiting.returncode == ExitCode.INTERRUPTED
    assert f"`scangate grant revoke {grant_id}` cancels it" in "".join(stderr_lines)
    assert grant(service, grant_id)["status"] == "pending_approval"
    assert service.scangate("grant", "revoke", grant_id).returncode == 0
    assert grant(service, grant_id)["status"] == "revoked"


def test_run_waits_for_the_approval_then_scans_and_revokes(
    hasty_approval_service: Service, tmp_path: Path
) -> None:
    service = hasty_approval_service
    id_file = tmp_path / "grant-id"
    run = service.start(
        "run", *TARGET, "--grant-id-file", str(id_file), "--",
        "kubectl", "--request-timeout=10s", "get", "pod", "web-0", "-o", "name",
    )  # fmt: skip
    try:
        assert wait_for(lambda: id_file.exists() and id_file.read_text().strip(), within=60)
        grant_id = id_file.read_text().strip()
        approve(service, grant_id, "alice")
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 0, stderr
    assert stdout.strip() == "pod/web-0"
    assert f"waiting for approval of grant {grant_id}: 0/1 approvals" in stderr
    assert grant(service, grant_id)["status"] == "revoked"
    assert service.scangate_objects(grant_id) == []


def test_run_giving_up_at_wait_timeout_cancels_the_request(
    two_person_service: Service, tmp_path: Path
) -> None:
    service = two_person_service
    marker = tmp_path / "ran"

    result = service.scangate("run", *TARGET, "--wait-timeout", "3", "--", "touch", str(marker))

    grant_id = newest_grant_id(service)
    assert result.returncode == ExitCode.APPROVAL_TIMEOUT, result.stderr
    assert "within --wait-timeout (0/2 approvals); the request was cancelled" in result.stderr
    assert not marker.exists()
    assert grant(service, grant_id)["status"] == "revoked"
    assert service.scangate_objects(grant_id) == []

"""`scangate run` under a policy that wants approvers (issue 19): it waits for the decision, then
runs the command as usual; a run that ends without an approval runs nothing and leaves no
pending request behind. Against `approval_service` (tests/support/approval_service.py), a
stand-in answering as the approvals contract says the service will."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.support.approval_service import FakeApprovalService
from tests.support.polling import wait_for

TARGET = ("-n", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "10m")
RECORD_GRANT = 'echo "$SCANGATE_GRANT_ID $SCANGATE_NAMESPACE"'


def test_run_waits_for_the_approval_then_runs_the_command_and_revokes(
    approval_service: FakeApprovalService,
) -> None:
    run = approval_service.start("run", *TARGET, "--", "sh", "-c", RECORD_GRANT)
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)
    approval_service.approve_as("alice", grant_id)
    polls = len(approval_service.polls_of(grant_id))
    # The client sees the first approval before the second comes.
    assert wait_for(lambda: len(approval_service.polls_of(grant_id)) > polls, within=30)
    assert run.poll() is None
    approval_service.approve_as("bob", grant_id)
    stdout, stderr = run.communicate(timeout=60)

    assert run.returncode == 0, stderr
    assert stdout.strip() == f"{grant_id} payments"
    assert f"waiting for approval of grant {grant_id}: 0/2 approvals" in stderr
    assert f"waiting for approval of grant {grant_id}: 1/2 approvals" in stderr
    assert f"grant {grant_id} revoked" in stderr
    assert approval_service.status_of(grant_id) == "revoked"


def test_run_of_a_denied_grant_runs_nothing_and_exits_9(
    approval_service: FakeApprovalService, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    run = approval_service.start("run", *TARGET, "--", "touch", str(marker))
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    denied = approval_service.scangate("grant", "deny", grant_id, "--reason", "no", who="alice")
    _, stderr = run.communicate(timeout=60)

    assert denied.returncode == 0
    assert run.returncode == 9, stderr
    assert not marker.exists()
    assert approval_service.status_of(grant_id) == "denied"
    assert "could not revoke" not in stderr


def test_run_no_wait_cancels_the_request_and_exits_10(
    approval_service: FakeApprovalService, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"

    result = approval_service.scangate("run", *TARGET, "--no-wait", "--", "touch", str(marker))

    grant_id = approval_service.only_grant()["id"]
    assert result.returncode == 10, result.stderr
    assert "needs approval and --no-wait was given: the request was cancelled" in result.stderr
    assert not marker.exists()
    assert approval_service.status_of(grant_id) == "revoked"
    assert approval_service.polls_of(grant_id) == []


def test_run_wait_timeout_cancels_the_request_and_exits_10(
    approval_service: FakeApprovalService, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"

    result = approval_service.scangate(
        "run", *TARGET, "--wait-timeout", "3", "--", "touch", str(marker)
    )

    grant_id = approval_service.only_grant()["id"]
    assert result.returncode == 10, result.stderr
    assert "within --wait-timeout (0/2 approvals); the request was cancelled" in result.stderr
    assert not marker.exists()
    assert approval_service.status_of(grant_id) == "revoked"


def test_run_interrupted_while_waiting_cancels_the_request(
    approval_service: FakeApprovalService,
) -> None:
    run = approval_service.start("run", *TARGET, "--", "true")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=30)

    assert run.returncode == 128 + signal.SIGTERM
    assert "SIGTERM received while waiting for approval: cancelling the request" in stderr
    assert approval_service.status_of(grant_id) == "revoked"


def test_run_under_a_policy_without_approval_starts_at_once(
    approval_service: FakeApprovalService,
) -> None:
    result = approval_service.scangate(
        "run", "-n", "open", "--pod", "web-0", "--scanner", "exec", "--", "sh", "-c", RECORD_GRANT
    )

    grant_id = approval_service.only_grant()["id"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{grant_id} open"
    assert "waiting for approval" not in result.stderr
    assert approval_service.polls_of(grant_id) == []

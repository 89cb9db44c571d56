"""`scangate grant approve|deny|list|show` as approvers use them (issue 19): each decision prints
the grant afterwards, refusals exit with the documented codes, and approvers list what waits
for them. Against `approval_service` (tests/support/approval_service.py), a stand-in answering
as the approvals contract says the service will."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.client.errors import ExitCode
from tests.support.approval_service import FakeApprovalService
from tests.support.cli_service import lines

TARGET = ("-n", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "10m")


def test_approvers_list_pending_grants_and_see_the_approval_in_show(
    approval_service: FakeApprovalService,
) -> None:
    grant_id = approval_service.scangate("grant", "request", *TARGET).stdout.strip()
    approval_service.approve_as("alice", grant_id)

    listed = approval_service.scangate("grant", "list", "--status", "pending_approval", who="bob")
    as_json = approval_service.scangate(
        "grant", "list", "--status", "pending_approval", "-o", "json", who="bob"
    )
    stranger = approval_service.scangate(
        "grant", "list", "--status", "pending_approval", who="carol"
    )
    shown = approval_service.scangate("grant", "show", grant_id, who="bob")

    assert listed.returncode == 0, listed.stderr
    header, row = lines(listed.stdout)
    assert header.split() == [
        "ID", "STATUS", "CLUSTER", "NAMESPACE", "SCANNER", "PODS", "EXPIRES_AT", "REQUESTER",
        "APPROVALS",
    ]  # fmt: skip
    assert row.split() == [
        grant_id, "pending_approval", "default", "payments", "exec", "web-0", "-", "apikey:ci",
        "1/2",
    ]  # fmt: skip
    assert [g["id"] for g in json.loads(as_json.stdout)["items"]] == [grant_id]
    assert stranger.stdout == ""
    assert "no grants" in stranger.stderr
    assert "approval:        1/2 approvals, deadline 20" in shown.stdout
    assert "  approved by apikey:alice at 20" in shown.stdout
    assert "(looked at it)" in shown.stdout


def test_approval_refusals_exit_with_the_documented_codes(
    approval_service: FakeApprovalService,
) -> None:
    grant_id = approval_service.scangate("grant", "request", *TARGET).stdout.strip()

    by_requester = approval_service.scangate("grant", "approve", grant_id, who="ci")
    by_stranger = approval_service.scangate("grant", "approve", grant_id, who="carol")
    approval_service.approve_as("alice", grant_id)
    twice = approval_service.scangate("grant", "approve", grant_id, who="alice")
    denied = approval_service.scangate("grant", "deny", grant_id, "--reason", "no", who="bob")
    after_denial = approval_service.scangate("grant", "approve", grant_id, who="bob")

    assert by_requester.returncode == ExitCode.DENIED == 4
    assert "Not an Approver (403)" in by_requester.stderr
    assert by_stranger.returncode == ExitCode.NOT_FOUND == 5
    assert twice.returncode == ExitCode.REJECTED == 6
    assert "Already Decided (409)" in twice.stderr
    assert denied.returncode == 0, denied.stderr
    assert after_denial.returncode == 6
    assert f"grant '{grant_id}' is denied, not pending_approval" in after_denial.stderr


def test_self_approval_is_refused_saying_so(approval_service: FakeApprovalService) -> None:
    approval_service.approvers = ("apikey:ci", "apikey:alice")
    grant_id = approval_service.scangate("grant", "request", *TARGET).stdout.strip()

    result = approval_service.scangate("grant", "approve", grant_id, who="ci")

    assert result.returncode == 4
    assert "Self-Approval Refused (403)" in result.stderr


def test_deny_needs_a_reason(approval_service: FakeApprovalService) -> None:
    grant_id = approval_service.scangate("grant", "request", *TARGET).stdout.strip()

    missing = approval_service.scangate("grant", "deny", grant_id, who="alice")
    blank = approval_service.scangate("grant", "deny", grant_id, "--reason", "  ", who="alice")

    assert missing.returncode == blank.returncode == ExitCode.USAGE
    assert "--reason" in missing.stderr
    assert "--reason must say why" in blank.stderr
    assert approval_service.status_of(grant_id) == "pending_approval"


def test_help_documents_approvals_and_their_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "grant", "request", "--help"],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip

    assert "--wait-timeout DURATION" in result.stdout
    assert "\n  9    the grant needed approval and an approver denied it" in result.stdout
    assert "\n  10   no approval decision in time" in result.stdout

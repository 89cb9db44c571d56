"""`scangate grant request` under a policy that wants approvers (issue 19): without --wait the
pending grant is printed; with --wait the client waits for the decision with a countdown,
polling as the service asks and riding out its hiccups, and exits 0, 9 or 10. Driven as a user
runs it (a separate `scangate` process) against `approval_service`, a real HTTP server that
answers as the approvals contract says the service will (tests/support/approval_service.py)."""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import select
import signal
import stat
import struct
import termios
from pathlib import Path

import pytest

from app.client.errors import ExitCode
from tests.support.approval_service import FakeApprovalService
from tests.support.cli_service import lines
from tests.support.polling import wait_for

TARGET = ("-n", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "10m")


def test_request_without_wait_prints_the_pending_grant_and_the_approve_command(
    approval_service: FakeApprovalService,
) -> None:
    result = approval_service.scangate("grant", "request", *TARGET)

    assert result.returncode == ExitCode.OK, result.stderr
    grant_id = result.stdout.strip()
    assert approval_service.status_of(grant_id) == "pending_approval"
    assert "needs approval (0/2 approvals, decision due by 20" in result.stderr
    assert f"an approver runs `scangate grant approve {grant_id}`" in result.stderr


def test_request_wait_returns_once_the_second_approver_approved(
    approval_service: FakeApprovalService, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "scan.kubeconfig"
    waiting = approval_service.start(
        "grant", "request", *TARGET, "--wait", "--kubeconfig-out", str(kubeconfig)
    )
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    first = approval_service.approve_as("alice", grant_id)
    assert waiting.poll() is None  # one approval of two: still waiting
    second = approval_service.approve_as("bob", grant_id)
    stdout, stderr = waiting.communicate(timeout=30)

    assert first == f"grant {grant_id}: pending_approval, 1/2 approvals"
    assert second.startswith(f"grant {grant_id}: active, 2/2 approvals; active until 20")
    assert waiting.returncode == ExitCode.OK, stderr
    assert stdout.strip() == grant_id
    assert f"grant {grant_id} approved (2/2 approvals)" in stderr
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert f"current-context: scangate-{grant_id}" in kubeconfig.read_text()


def test_countdown_in_a_log_is_a_line_per_change_not_a_line_per_tick(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.required = 1
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)
    assert wait_for(lambda: len(approval_service.polls_of(grant_id)) >= 3, within=30)

    approval_service.approve_as("alice", grant_id)
    _, stderr = waiting.communicate(timeout=30)

    countdown = [line for line in lines(stderr) if "waiting for approval" in line]
    # About 5 s of waiting with nothing new: one line, not one per redraw (no \r in a log).
    assert len(countdown) == 1, stderr
    assert "\r" not in stderr
    assert re.fullmatch(
        rf"scangate: waiting for approval of grant {grant_id}: 0/1 approvals, "
        rf"(59:[0-5]\d|1:00:00) left \(scangate grant approve {grant_id}\)",
        countdown[0],
    ), countdown[0]
    assert waiting.returncode == 0


def test_countdown_on_a_terminal_is_one_line_rewritten_in_place(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.required = 1
    controller, terminal = pty.openpty()
    try:
        waiting = approval_service.start("grant", "request", *TARGET, "--wait", stderr=terminal)
        grant_id = approval_service.requested_grant_id()
        assert wait_for(lambda: len(approval_service.polls_of(grant_id)) >= 2, within=30)
        approval_service.approve_as("alice", grant_id)
        stdout, _ = waiting.communicate(timeout=30)
        shown = b""
        while chunk := _read_available(controller):
            shown += chunk
    finally:
        os.close(terminal)
        os.close(controller)

    text = shown.decode()
    redraws = text.count(f"\rscangate: waiting for approval of grant {grant_id}: 0/1 approvals")
    assert redraws >= 2, text  # the seconds count down on the same line
    assert "\x1b[K" in text
    assert f"grant {grant_id} approved (1/1 approvals)" in text
    assert stdout.strip() == grant_id


def test_countdown_on_a_narrow_terminal_is_cut_to_its_width(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.required = 1
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    try:
        waiting = approval_service.start("grant", "request", *TARGET, "--wait", stderr=terminal)
        grant_id = approval_service.requested_grant_id()
        assert wait_for(lambda: len(approval_service.polls_of(grant_id)) >= 2, within=30)
        approval_service.approve_as("alice", grant_id)
        waiting.communicate(timeout=30)
        shown = b""
        while chunk := _read_available(controller):
            shown += chunk
    finally:
        os.close(terminal)
        os.close(controller)

    redraws = [
        part.split("\x1b[K")[0]
        for part in shown.decode().split("\r")
        if part.startswith("scangate: waiting for approval")
    ]
    assert len(redraws) >= 2, shown
    assert all(len(redraw) == 59 for redraw in redraws), redraws


def _read_available(fd: int) -> bytes:
    if not select.select([fd], [], [], 0.5)[0]:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal's other side is closed
        return b""


def test_a_denial_exits_9_with_who_denied_it_and_why(
    approval_service: FakeApprovalService,
) -> None:
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    denied = approval_service.scangate(
        "grant", "deny", grant_id, "--reason", "not during the freeze", who="bob"
    )
    stdout, stderr = waiting.communicate(timeout=30)

    assert denied.returncode == 0, denied.stderr
    assert denied.stdout.strip() == (
        f"grant {grant_id}: denied, 0/2 approvals; denied by apikey:bob: not during the freeze"
    )
    assert waiting.returncode == ExitCode.APPROVAL_DENIED == 9
    assert stdout == ""
    assert f"grant {grant_id} was denied by apikey:bob: not during the freeze" in stderr


def test_an_approved_grant_the_cluster_refused_ends_the_wait_with_its_error(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.required = 1
    approval_service.provisioning_error = "the cluster refused: namespace payments not found"
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    approved = approval_service.scangate("grant", "approve", grant_id, who="alice")
    stdout, stderr = waiting.communicate(timeout=30)

    assert approved.returncode == 0, approved.stderr  # the approval itself stands
    assert approved.stdout.strip() == (
        f"grant {grant_id}: failed, 1/1 approvals; could not be provisioned: the cluster "
        "refused: namespace payments not found"
    )
    assert waiting.returncode == ExitCode.FAILURE, stderr
    assert stdout == ""
    assert (
        f"grant {grant_id} was approved but could not be provisioned (failed): the cluster "
        "refused: namespace payments not found" in stderr
    )


def test_no_decision_before_the_requests_deadline_exits_10(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.timeout_seconds = 4

    result = approval_service.scangate("grant", "request", *TARGET, "--wait")

    grant_id = approval_service.only_grant()["id"]
    assert result.returncode == ExitCode.APPROVAL_TIMEOUT == 10, result.stderr
    assert f"no approval decision for grant {grant_id} before its deadline" in result.stderr
    assert "it is approval_expired" in result.stderr
    assert approval_service.status_of(grant_id) == "approval_expired"


def test_wait_timeout_exits_10_and_cancels_the_request(
    approval_service: FakeApprovalService,
) -> None:
    result = approval_service.scangate("grant", "request", *TARGET, "--wait", "--wait-timeout", "3")

    grant_id = approval_service.only_grant()["id"]
    assert result.returncode == 10, result.stderr
    assert (
        f"no approval decision for grant {grant_id} within --wait-timeout (0/2 approvals); "
        "the request was cancelled" in result.stderr
    )
    assert approval_service.status_of(grant_id) == "revoked"


def test_wait_timeout_without_wait_is_a_usage_error(
    approval_service: FakeApprovalService,
) -> None:
    result = approval_service.scangate("grant", "request", *TARGET, "--wait-timeout", "3")

    assert result.returncode == ExitCode.USAGE
    assert "--wait-timeout needs --wait" in result.stderr
    assert approval_service.grants == {}


def test_ctrl_c_while_waiting_leaves_the_request_pending_and_says_how_to_cancel(
    approval_service: FakeApprovalService,
) -> None:
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)

    waiting.send_signal(signal.SIGINT)
    _, stderr = waiting.communicate(timeout=30)

    assert waiting.returncode == ExitCode.INTERRUPTED == 130
    assert f"`scangate grant revoke {grant_id}` cancels it" in stderr
    assert "Traceback" not in stderr
    assert approval_service.status_of(grant_id) == "pending_approval"


def test_polls_every_two_seconds_and_honours_retry_after(
    approval_service: FakeApprovalService,
) -> None:
    approval_service.required = 1
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    assert wait_for(lambda: len(approval_service.polls_of(grant_id)) >= 3, within=30)
    approval_service.poll_retry_after = 4  # the service asks for slower polling from now on
    asked_at = approval_service.polls_of(grant_id)[-1].at
    assert wait_for(lambda: len(approval_service.polls_of(grant_id)) >= 5, within=60)
    approval_service.approve_as("alice", grant_id)
    waiting.communicate(timeout=30)

    times = [poll.at for poll in approval_service.polls_of(grant_id)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    before = [gap for gap, at in zip(gaps, times[1:], strict=False) if at <= asked_at]
    after = [gap for gap, at in zip(gaps, times[1:], strict=False) if at > asked_at]
    assert before, gaps
    assert all(1.9 <= gap < 3.0 for gap in before), gaps
    # The first gap after may be the 2 s one already scheduled; every later one waits 4 s.
    assert after[1:], gaps
    assert all(gap >= 3.9 for gap in after[1:]), gaps
    assert waiting.returncode == 0


@pytest.mark.parametrize("failure", ["503 with Retry-After", "connection dropped"])
def test_transient_failures_while_polling_are_reported_once_and_waited_out(
    approval_service: FakeApprovalService, failure: str
) -> None:
    approval_service.required = 1
    waiting = approval_service.start("grant", "request", *TARGET, "--wait")
    grant_id = approval_service.requested_grant_id()
    approval_service.wait_until_polled(grant_id)
    # More failures than the client's own retries of one request: the waiting must carry on.
    if failure == "connection dropped":
        approval_service.drop_next_polls = 5
    else:
        approval_service.retry_after = 1
        approval_service.fail_next_polls = 5
    assert wait_for(
        lambda: approval_service.fail_next_polls == approval_service.drop_next_polls == 0,
        within=60,
    )
    approval_service.approve_as("alice", grant_id)
    stdout, stderr = waiting.communicate(timeout=30)

    assert waiting.returncode == 0, stderr
    assert stdout.strip() == grant_id
    assert stderr.count(f"warning: could not check grant {grant_id}") == 1
    expected = "cannot reach scangate" if failure == "connection dropped" else "(503)"
    assert expected in stderr
    assert f"grant {grant_id} can be checked again" in stderr
    statuses = [r.status for r in approval_service.polls_of(grant_id)]
    assert statuses.count(0 if failure == "connection dropped" else 503) == 5

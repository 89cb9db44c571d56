"""`scangate run`: the grant exists exactly while the command runs, whatever way it ends - success,
failure, a command that cannot start, or SIGINT / SIGTERM from a cancelled CI job - and the exit
status is the command's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli_service import Service
from tests.support.polling import wait_for

TARGET = ("--namespace", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "10m")


def grant_status(service: Service, grant_id: str) -> str:
    result = service.scangate("grant", "show", grant_id, "-o", "json")
    assert result.returncode == 0, result.stderr
    status: str = json.loads(result.stdout)["status"]
    return status


def test_command_runs_with_a_working_kubeconfig_then_the_grant_is_revoked(
    service: Service, tmp_path: Path
) -> None:
    id_file = tmp_path / "grant-id"
    # kubectl reads KUBECONFIG: the command uses the grant like a real scanner would.
    result = service.scangate(
        "run", *TARGET, "--grant-id-file", str(id_file), "--",
        "kubectl", "--request-timeout=10s", "get", "pod", "web-0", "-o", "name",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pod/web-0"
    grant_id = id_file.read_text().strip()
    assert f"grant {grant_id} revoked" in result.stderr
    assert grant_status(service, grant_id) == "revoked"
    assert service.scangate_objects(grant_id) == []


def test_failing_command_still_revokes_and_its_status_is_the_exit_code(
    service: Service, tmp_path: Path
) -> None:
    id_file = tmp_path / "grant-id"

    result = service.scangate(
        "run", *TARGET, "--grant-id-file", str(id_file), "--", "sh", "-c", "exit 3"
    )

    assert result.returncode == 3
    grant_id = id_file.read_text().strip()
    assert grant_status(service, grant_id) == "revoked"
    assert not service.service_account_exists(grant_id)


def test_command_environment_is_private_and_minimal(service: Service, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    script = (
        "import json, os, stat, sys;"
        "path = os.environ['KUBECONFIG'];"
        "json.dump({'mode': stat.S_IMODE(os.stat(path).st_mode), 'path': path,"
        " 'grant': os.environ.get('SCANGATE_GRANT_ID'),"
        " 'leaked': sorted(k for k in os.environ if k in ('SCANGATE_TOKEN',"
        " 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'ACTIONS_ID_TOKEN_REQUEST_URL'))},"
        f" open({str(report)!r}, 'w'))"
    )

    result = service.scangate(
        "run", *TARGET, "--", sys.executable, "-c", script,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN="runner-secret",
        ACTIONS_ID_TOKEN_REQUEST_URL="https://example.invalid/token",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    seen = json.loads(report.read_text())
    assert seen["mode"] == 0o600
    assert seen["leaked"] == []
    assert len(seen["grant"]) == 26
    assert not Path(seen["path"]).exists()  # the kubeconfig is deleted afterwards
    assert grant_status(service, seen["grant"]) == "revoked"


def test_command_that_cannot_be_found_exits_127_and_revokes(
    service: Service, tmp_path: Path
) -> None:
    id_file = tmp_path / "grant-id"

    result = service.scangate(
        "run", *TARGET, "--grant-id-file", str(id_file), "--", "no-such-scanner-binary"
    )

    assert result.returncode == 127
    assert "command not found: no-such-scanner-binary" in result.stderr
    assert grant_status(service, id_file.read_text().strip()) == "revoked"


def test_denied_request_runs_nothing_and_exits_with_the_client_code(
    service: Service, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"

    result = service.scangate(
        "run", "-n", "orders", "--pod", "api-0", "--scanner", "exec", "--",
        "touch", str(marker),
    )  # fmt: skip

    assert result.returncode == 4
    assert not marker.exists()


def test_run_without_a_command_is_a_usage_error(service: Service) -> None:
    result = service.scangate("run", *TARGET)

    assert result.returncode == 2
    assert "no command" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_is_forwarded_to_the_command_and_the_grant_revoked(
    service: Service, tmp_path: Path, signum: signal.Signals
) -> None:
    started = tmp_path / "started"
    # The command records its grant id, then waits to be interrupted; `exec` so the signal
    # reaches `sleep` itself (whose death by the signal is the status to report).
    command = (
        f'echo "$SCANGATE_GRANT_ID" > {started}.tmp && mv {started}.tmp {started} && exec sleep 60'
    )
    run = service.start("run", *TARGET, "--", "sh", "-c", command)
    try:
        assert wait_for(started.exists, within=60), "the command never started"
        grant_id = started.read_text().strip()
        assert service.service_account_exists(grant_id)

        run.send_signal(signum)
        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 128 + signum
    assert f"{signum.name} received: forwarded to the command" in stderr
    assert grant_status(service, grant_id) == "revoked"
    assert service.scangate_objects(grant_id) == []


def test_a_command_that_ignores_the_signal_loses_its_access_anyway(
    service: Service, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    finish = tmp_path / "finish"
    # Ignores SIGTERM and keeps running: the grant must not wait for it.
    command = (
        f"trap '' TERM; echo \"$SCANGATE_GRANT_ID\" > {started}; "
        f"while [ ! -e {finish} ]; do sleep 0.1; done; exit 5"
    )
    run = service.start("run", *TARGET, "--", "sh", "-c", command)
    try:
        assert wait_for(lambda: started.exists() and started.read_text().strip() != "", within=60)
        grant_id = started.read_text().strip()

        run.send_signal(signal.SIGTERM)
        assert wait_for(lambda: not service.service_account_exists(grant_id), within=20)
        assert run.poll() is None  # still running, but without access
        finish.touch()
        run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 5
    assert grant_status(service, grant_id) == "revoked"


def test_help_documents_the_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0
    assert "exit codes:" in result.stdout
    assert "128+N" in result.stdout


# -- the command never outlives the grant ---------------------------------------------------------


def started_grant(started: Path) -> str:
    assert wait_for(lambda: started.exists() and started.read_text().strip() != "", within=60), (
        "the command never started"
    )
    return started.read_text().split()[0]


def test_revocation_by_another_client_stops_the_command(service: Service, tmp_path: Path) -> None:
    started = tmp_path / "started"
    command = (
        f'echo "$SCANGATE_GRANT_ID" > {started}.tmp && mv {started}.tmp {started} && exec sleep 60'
    )
    run = service.start("run", *TARGET, "--poll-seconds", "0.5", "--", "sh", "-c", command)
    try:
        grant_id = started_grant(started)
        revoked = service.scangate("grant", "revoke", grant_id, who="root")
        assert revoked.returncode == 0, revoked.stderr

        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 8, stderr
    assert f"grant {grant_id} is revoked: stopping the command (SIGTERM" in stderr
    assert grant_status(service, grant_id) == "revoked"


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(
    service: Service, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    terms = tmp_path / "terms"
    # Records its own pid, and every SIGTERM it gets, and carries on regardless.
    command = (
        f"trap 'echo TERM >> {terms}' TERM; "
        f'echo "$SCANGATE_GRANT_ID $$" > {started}.tmp && mv {started}.tmp {started}; '
        "while true; do sleep 0.1; done"
    )
    run = service.start(
        "run", *TARGET, "--poll-seconds", "0.5", "--grace-seconds", "2", "--",
        "sh", "-c", command,
    )  # fmt: skip
    try:
        grant_id = started_grant(started)
        pid = int(started.read_text().split()[1])
        revoked_at = time.monotonic()
        assert service.scangate("grant", "revoke", grant_id, who="root").returncode == 0

        _, stderr = run.communicate(timeout=30)
        took = time.monotonic() - revoked_at
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 8, stderr
    assert terms.read_text().split() == ["TERM"]  # asked once, ignored
    assert "still running after the grace period: SIGKILL" in stderr
    assert took >= 2
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, and reaped by scangate run


def test_expiry_without_renewal_stops_the_command(service: Service, tmp_path: Path) -> None:
    started = tmp_path / "started"
    command = (
        f'echo "$SCANGATE_GRANT_ID" > {started}.tmp && mv {started}.tmp {started} && exec sleep 120'
    )
    begun = time.monotonic()
    result = service.scangate(
        "run", "--namespace", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "30s",
        "--grace-seconds", "1", "--", "sh", "-c", command,
    )  # fmt: skip
    took = time.monotonic() - begun

    grant_id = started.read_text().strip()
    assert result.returncode == 8, result.stderr
    # Whichever sees the end first says it: the local deadline ("expired at ...") or a poll
    # of the service, whose reaper may expire the grant a moment sooner ("expired").
    assert f"grant {grant_id} expired" in result.stderr
    assert "stopping the command (SIGTERM, then SIGKILL after 1 s)" in result.stderr
    assert 29 <= took < 60
    assert grant_status(service, grant_id) in ("expired", "revoked")
    assert service.scangate_objects(grant_id) == []


def test_renew_keeps_the_command_running_past_the_original_ttl(
    service: Service, tmp_path: Path
) -> None:
    id_file = tmp_path / "grant-id"
    begun = time.monotonic()
    # The command checks its access once the first TTL is over: kubectl must still be allowed.
    result = service.scangate(
        "run", "--namespace", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "30s",
        "--renew", "--poll-seconds", "2", "--grant-id-file", str(id_file), "--",
        "sh", "-c", "sleep 36 && exec kubectl --request-timeout=10s get pod web-0 -o name",
    )  # fmt: skip
    took = time.monotonic() - begun

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pod/web-0"
    assert took >= 36
    grant_id = id_file.read_text().strip()
    assert f"grant {grant_id} renewed until" in result.stderr
    events = httpx.get(
        f"{service.url}/v1/grants/{grant_id}/events",
        headers={"Authorization": f"Bearer {service.keys['ci']}"},
        timeout=10,
    ).json()["items"]
    renewals = [e for e in events if e["type"] == "renewed"]
    assert renewals
    assert all(e["detail"]["ttl_seconds"] == 30 for e in renewals)
    assert grant_status(service, grant_id) == "revoked"  # revoked when the command finished


def test_renewal_stops_at_the_policys_lifetime_cap_and_the_command_is_stopped(
    capped_service: Service, tmp_path: Path
) -> None:
    id_file = tmp_path / "grant-id"
    begun = time.monotonic()
    result = capped_service.scangate(
        "run", "--namespace", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "30s",
        "--renew", "--grace-seconds", "1", "--grant-id-file", str(id_file), "--",
        "sleep", "120",
    )  # fmt: skip
    took = time.monotonic() - begun

    grant_id = id_file.read_text().strip()
    assert result.returncode == 8, result.stderr
    # The service refused to extend past the cap (409), so the grant ended at its first expiry.
    assert f"grant {grant_id} cannot be renewed (Grant Lifetime Cap Reached (409)" in result.stderr
    # Whichever sees the end first says it: the local deadline ("expired at ...") or a poll
    # of the service, whose reaper may expire the grant a moment sooner ("expired").
    assert f"grant {grant_id} expired" in result.stderr
    assert 29 <= took < 60

"""The client's small parts on their own: durations, private files, problem messages, exit codes,
credentials, and that its scanner list is the service's."""

from __future__ import annotations

import argparse
import re
import stat
from pathlib import Path

import pytest

from app.cli import build_parser
from app.client.approval_wait import time_left_text
from app.client.credentials import CommandToken, FileToken, StaticToken, credential_from
from app.client.durations import format_duration, parse_duration
from app.client.errors import ApiError, ClientError, ExitCode, UsageError
from app.client.files import private_temp_file, write_private_file
from app.client.output import events_text, grant_text
from app.client.parser import GRANT_STATUSES, SCANNERS
from app.db.models import GrantStatus
from app.kube.profiles import SCANNER_PROFILES


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("900", 900), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("2m30s", 150)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15 minutes", "-5m", "0", "1d", "m"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_durations_read_back() -> None:
    assert [format_duration(s) for s in (900, 5400, 45)] == ["15m", "1h30m", "45s"]


def test_private_files_are_0600_from_the_start(tmp_path: Path) -> None:
    written = write_private_file(tmp_path / "kubeconfig", "secret: 1\n")
    temporary = private_temp_file("secret: 2\n", prefix="scangate-test-")
    try:
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
        assert list(tmp_path.iterdir()) == [written]  # no temporary left beside it
    finally:
        temporary.unlink()


def test_problem_responses_read_as_one_message_with_their_fields() -> None:
    error = ApiError(
        422,
        {
            "title": "Request Validation Failed",
            "detail": "invalid request: body.ttl_seconds",
            "errors": [{"field": "body.ttl_seconds", "message": "must be at least 30"}],
        },
    )

    assert str(error) == (
        "Request Validation Failed (422): invalid request: body.ttl_seconds\n"
        "  body.ttl_seconds: must be at least 30"
    )
    assert error.exit_code == ExitCode.REJECTED


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.REJECTED),
        (401, ExitCode.UNAUTHENTICATED),
        (403, ExitCode.DENIED),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.REJECTED),
        (422, ExitCode.REJECTED),
        (500, ExitCode.FAILURE),
        (502, ExitCode.UNAVAILABLE),
        (503, ExitCode.UNAVAILABLE),
    ],
)
def test_http_statuses_map_to_documented_exit_codes(status: int, code: ExitCode) -> None:
    assert ApiError(status, {}).exit_code == code


def test_exit_codes_are_documented_in_the_help() -> None:
    help_text = build_parser().format_help()

    for code in ExitCode:
        assert re.search(rf"\n  {int(code)} +\S", help_text), code


def test_the_clients_scanners_are_the_services_profiles() -> None:
    assert tuple(SCANNERS) == tuple(SCANNER_PROFILES)


def test_grant_list_accepts_every_status_of_the_service() -> None:
    # The approvals' statuses are the client's already; the service gains them with issue 19.
    assert {status.value for status in GrantStatus} <= set(GRANT_STATUSES)
    assert {"pending_approval", "denied", "approval_expired"} <= set(GRANT_STATUSES)


def test_time_left_reads_as_minutes_and_seconds_then_hours() -> None:
    assert [time_left_text(s) for s in (872.9, 59, 3723, -4)] == [
        "14:32", "00:59", "1:02:03", "00:00",
    ]  # fmt: skip


def test_credentials_come_from_flags_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("SCANGATE_TOKEN", "from-env")

    assert isinstance(credential_from(token_file=None, token_command="echo x"), CommandToken)
    assert credential_from(token_file=str(token_file), token_command=None).token() == "from-file"
    assert credential_from(token_file=None, token_command=None).token() == "from-env"
    monkeypatch.setenv("SCANGATE_TOKEN_COMMAND", "echo from-command")
    assert credential_from(token_file=None, token_command=None).token() == "from-command"
    monkeypatch.delenv("SCANGATE_TOKEN_COMMAND")
    monkeypatch.delenv("SCANGATE_TOKEN")
    with pytest.raises(UsageError):
        credential_from(token_file=None, token_command=None)


def test_token_file_is_reread_on_refresh(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first")
    credential = FileToken(str(token_file))
    assert credential.token() == "first"

    token_file.write_text("second")

    assert credential.refresh() is True
    assert credential.token() == "second"
    assert StaticToken("x").refresh() is False


def test_a_failing_token_command_never_shows_its_output() -> None:
    credential = CommandToken("echo secret-looking-output; echo 'no endpoint' >&2; exit 3")

    with pytest.raises(ClientError) as caught:
        credential.token()

    assert "status 3" in str(caught.value)
    assert "no endpoint" in str(caught.value)
    assert "secret-looking-output" not in str(caught.value)
    assert "secret" not in repr(StaticToken("secret"))


def test_grant_text_says_what_each_pod_exposes() -> None:
    exposed = {
        "service_account": "web", "automount_service_account_token": None,
        "service_account_token": True, "secret_volumes": ["web-tls"],
        "secret_env": {"app": ["db-credentials"]}, "configmap_volumes": [],
        "configmap_env": {"app": ["settings"], "proxy": ["proxy-config"]},
    }  # fmt: skip

    text = grant_text({"scanner": "exec", "exposure": {"web-0": exposed}})
    sidecar = grant_text({"scanner": "sidecar", "exposure": None})

    assert text.endswith(
        "exposure:\n  web-0: ServiceAccount web (token mounted), Secret volumes web-tls, "
        "Secret env app: db-credentials, ConfigMap env app: settings; proxy: proxy-config"
    )
    assert sidecar.endswith("exposure:        - (sidecar: reaches no container)")


def test_approval_events_read_with_their_count_and_reason() -> None:
    at, deadline = "2026-12-04T18:00:00Z", "2026-12-04T19:00:00Z"
    events = [
        {"at": at, "type": "approval_required", "actor": "apikey:ci",
         "detail": {"required": 2, "approvers": ["apikey:alice"], "deadline": deadline}},
        {"at": at, "type": "approved", "actor": "apikey:alice",
         "detail": {"reason": "change 4711", "approvals": 1, "required": 2}},
        {"at": at, "type": "denied", "actor": "apikey:bob", "detail": {"reason": "freeze"}},
    ]  # fmt: skip

    assert events_text(events).splitlines() == [
        f"{at}  approval_required  apikey:ci  needs 2 by {deadline}",
        f"{at}  approved           apikey:alice  1/2  (change 4711)",
        f"{at}  denied             apikey:bob  (freeze)",
    ]

"""`scangate grant ...` and `scangate whoami` against a running service on kubesim: what a CI
script sees on stdout, stderr and in the exit code, and what the cluster holds afterwards."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml

from app.client.errors import ExitCode
from tests.support.cli_service import Service, lines
from tests.support.kubectl import kubectl


def request(service: Service, *extra: str, who: str = "ci") -> str:
    result = service.scangate(
        "grant", "request", "-n", "payments", "--pod", "web-0", "--scanner", "exec", *extra, who=who
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_request_prints_only_the_grant_id_and_writes_a_private_working_kubeconfig(
    service: Service, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "scan.kubeconfig"

    result = service.scangate(
        "grant", "request", "--namespace", "payments", "--pod", "web-0", "--pod", "web-1",
        "--scanner", "exec", "--ttl", "15m", "--reason", "nightly scan",
        "--kubeconfig-out", str(kubeconfig),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    grant_id = result.stdout.strip()
    assert len(grant_id) == 26
    assert grant_id.isalnum()
    assert f"grant {grant_id}: exec access to payments/web-0,web-1" in result.stderr
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == f"scangate-{grant_id}"
    assert kubectl(kubeconfig, "get", "pod", "web-0", "-o", "name").stdout.strip() == "pod/web-0"
    assert kubectl(kubeconfig, "auth", "can-i", "create", "pods/exec/db-0").stdout.strip() == "no"
    assert service.service_account_exists(grant_id)


def test_kubeconfig_out_replaces_an_existing_world_readable_file(
    service: Service, tmp_path: Path
) -> None:
    target = tmp_path / "kubeconfig"
    target.write_text("old")
    target.chmod(0o644)

    request(service, "--kubeconfig-out", str(target))

    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "old" not in target.read_text()


def test_request_with_a_ttl_and_json_output(service: Service) -> None:
    result = service.scangate(
        "grant", "request", "-n", "payments", "-l", "app=web", "--scanner", "debug",
        "--ttl", "1h", "--output", "json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    grant = json.loads(result.stdout)
    assert grant["status"] == "active"
    assert grant["selector"] == "app=web"
    assert grant["pods"] == ["web-0", "web-1"]  # web-2 is Pending: not covered


def test_show_list_kubeconfig_and_revoke_one_grant(service: Service, tmp_path: Path) -> None:
    grant_id = request(service)

    show = service.scangate("grant", "show", grant_id)
    listing = service.scangate("grant", "list")
    listed_json = service.scangate("grant", "list", "--status", "active", "-o", "json")
    printed = service.scangate("grant", "kubeconfig", grant_id)
    out = tmp_path / "fetched.kubeconfig"
    written = service.scangate("grant", "kubeconfig", grant_id, "--out", str(out))
    revoked = service.scangate("grant", "revoke", grant_id, "--reason", "done")
    after = service.scangate("grant", "show", grant_id, "--output", "json")

    assert show.returncode == 0
    assert f"id:              {grant_id}" in show.stdout
    assert "status:          active" in show.stdout
    # The seed's web-0 runs as `default` without a token volume, Secrets or ConfigMaps.
    assert "exposure:\n  web-0: ServiceAccount default (no token mounted)" in show.stdout
    assert lines(listing.stdout)[0].split() == [
        "ID", "STATUS", "CLUSTER", "NAMESPACE", "SCANNER", "PODS", "EXPIRES_AT",
    ]  # fmt: skip
    assert lines(listing.stdout)[1].split()[:2] == [grant_id, "active"]
    assert [g["id"] for g in json.loads(listed_json.stdout)["items"]] == [grant_id]
    assert yaml.safe_load(printed.stdout)["users"][0]["user"]["token"]
    assert written.returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert revoked.returncode == 0
    assert revoked.stdout.strip() == f"grant {grant_id}: revoked"
    assert json.loads(after.stdout)["status"] == "revoked"
    assert service.scangate_objects(grant_id) == []


def test_list_follows_every_page_with_all(service: Service) -> None:
    ids = {request(service) for _ in range(3)}

    first_page = service.scangate("grant", "list", "--limit", "2", "-o", "json")
    everything = service.scangate("grant", "list", "--limit", "2", "--all", "-o", "json")

    assert len(json.loads(first_page.stdout)["items"]) == 2
    assert {g["id"] for g in json.loads(everything.stdout)["items"]} == ids


def test_whoami_with_an_api_key(service: Service) -> None:
    text = service.scangate("whoami")
    as_json = json.loads(service.scangate("whoami", "--output", "json").stdout)

    assert "principal: apikey:ci" in text.stdout
    assert "payments-ci: namespaces payments; scanners exec,debug" in text.stdout
    assert as_json["principal"] == "apikey:ci"


def test_whoami_with_an_oidc_token_file(service: Service, tmp_path: Path) -> None:
    token_file = tmp_path / "id-token"
    token_file.write_text(service.issuer.token() + "\n")

    result = service.scangate("whoami", "--token-file", str(token_file), who=None)

    assert result.returncode == 0, result.stderr
    assert f"principal: oidc:{service.issuer.url}#repo:acme/payments:" in result.stdout
    assert "repository: acme/payments" in result.stdout


def test_an_expired_token_is_refreshed_by_the_token_command(
    service: Service, tmp_path: Path
) -> None:
    expired = service.issuer.token(exp=1, iat=0, nbf=0)
    fresh = tmp_path / "fresh-token"
    fresh.write_text(service.issuer.token())

    result = service.scangate(
        "whoami", who=None, SCANGATE_TOKEN=expired, SCANGATE_TOKEN_COMMAND=f"cat {fresh}"
    )

    assert result.returncode == 0, result.stderr
    assert "principal: oidc:" in result.stdout


# -- errors: readable messages, documented exit codes -------------------------------------------


def test_policy_denial_exits_4_with_the_services_explanation(service: Service) -> None:
    result = service.scangate(
        "grant", "request", "-n", "orders", "--pod", "api-0", "--scanner", "exec"
    )

    assert result.returncode == ExitCode.DENIED == 4
    assert result.stdout == ""
    assert "Denied by Policy (403)" in result.stderr
    assert "namespace 'orders'" in result.stderr


def test_a_request_the_service_rejects_exits_6_naming_the_field(service: Service) -> None:
    too_many = service.scangate(
        "grant", "request", "-n", "payments", "--pod", "web-0", "--pod", "web-1", "--pod",
        "db-0", "--scanner", "exec",
    )  # fmt: skip
    no_match = service.scangate(
        "grant", "request", "-n", "payments", "-l", "app=nothing", "--scanner", "exec"
    )

    assert too_many.returncode == ExitCode.REJECTED == 6
    assert "body.pods" in too_many.stderr
    assert no_match.returncode == 6
    assert "app=nothing" in no_match.stderr


def test_another_principals_grant_is_not_found_exit_5(service: Service) -> None:
    grant_id = request(service)

    commands = (("show", grant_id), ("events", grant_id), ("kubeconfig", grant_id),
                ("revoke", grant_id))  # fmt: skip
    for command in commands:
        result = service.scangate("grant", *command, who="other")
        assert result.returncode == ExitCode.NOT_FOUND == 5, command
        assert "Not Found (404)" in result.stderr
    assert service.service_account_exists(grant_id)


def test_missing_or_bad_credentials(service: Service, tmp_path: Path) -> None:
    no_token = service.scangate("whoami", who=None)
    bad_token = service.scangate("whoami", who=None, SCANGATE_TOKEN="sg_" + "x" * 43)
    empty_file = tmp_path / "empty"
    empty_file.write_text("")
    empty = service.scangate("whoami", "--token-file", str(empty_file), who=None)

    assert no_token.returncode == ExitCode.USAGE == 2
    assert "SCANGATE_TOKEN" in no_token.stderr
    assert bad_token.returncode == ExitCode.UNAUTHENTICATED == 3
    assert "Unauthorized (401)" in bad_token.stderr
    assert "x" * 43 not in bad_token.stderr
    assert empty.returncode == 2


def test_unreachable_service_exits_7(service: Service) -> None:
    result = service.scangate("whoami", SCANGATE_URL="http://127.0.0.1:1", timeout=60)

    assert result.returncode == ExitCode.UNAVAILABLE == 7
    assert "cannot reach scangate at http://127.0.0.1:1" in result.stderr


def test_usage_errors_exit_2(service: Service) -> None:
    bad_ttl = service.scangate(
        "grant", "request", "-n", "payments", "--pod", "web-0", "--scanner", "exec", "--ttl", "soon"
    )
    both = service.scangate(
        "grant", "request", "-n", "payments", "--pod", "web-0", "-l", "app=web", "--scanner", "exec"
    )

    assert bad_ttl.returncode == 2
    assert "invalid duration 'soon'" in bad_ttl.stderr
    assert both.returncode == 2


def test_a_kubeconfig_that_cannot_be_written_revokes_the_grant(
    service: Service, tmp_path: Path
) -> None:
    result = service.scangate(
        "grant", "request", "-n", "payments", "--pod", "web-0", "--scanner", "exec",
        "--kubeconfig-out", str(tmp_path / "missing-dir" / "kubeconfig"),
    )  # fmt: skip

    assert result.returncode == ExitCode.FAILURE
    assert result.stdout == ""
    assert "the grant has been revoked" in result.stderr
    grant_id = result.stderr.split("grant ", 1)[1].split()[0]
    shown = json.loads(service.scangate("grant", "show", grant_id, "-o", "json").stdout)
    assert shown["status"] == "revoked"


def test_events_lists_the_grants_audit_trail_oldest_first_as_text_and_json(
    service: Service,
) -> None:
    grant_id = request(service)
    assert service.scangate("grant", "kubeconfig", grant_id).returncode == 0
    assert service.scangate("grant", "revoke", grant_id).returncode == 0

    text = service.scangate("grant", "events", grant_id)
    as_json = service.scangate("grant", "events", grant_id, "-o", "json")

    assert text.returncode == 0, text.stderr
    types = [line.split()[1] for line in lines(text.stdout)]
    assert types[:2] == ["requested", "activated"]
    assert "kubeconfig_issued" in types
    assert types[-1] == "revoked"
    assert all(line.split()[2] == "apikey:ci" for line in lines(text.stdout))
    items = json.loads(as_json.stdout)["items"]
    assert [item["type"] for item in items] == types

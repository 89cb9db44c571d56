"""The client subcommands' arguments, added to the one `scangate` parser by `app/cli.py`."""

from __future__ import annotations

import argparse
import os
from typing import Any, Final

from app.client.api import DEFAULT_TIMEOUT_SECONDS
from app.client.commands import (
    cmd_grant_approve,
    cmd_grant_deny,
    cmd_grant_events,
    cmd_grant_kubeconfig,
    cmd_grant_list,
    cmd_grant_request,
    cmd_grant_revoke,
    cmd_grant_show,
    cmd_whoami,
)
from app.client.durations import parse_duration
from app.client.errors import EXIT_CODES_HELP
from app.client.run import cmd_run

# The service's scanner profiles (app.kube.profiles.SCANNER_PROFILES; a test keeps them equal).
# Not imported: that would load the Kubernetes client into every CLI call.
SCANNERS: Final = ("exec", "debug", "sidecar")
GRANT_STATUSES: Final = (
    "pending_approval", "provisioning", "active", "revoking", "revoked", "expired", "failed",
    "rejected", "denied", "approval_expired",
)  # fmt: skip

_ENVIRONMENT_HELP: Final = """\
environment:
  SCANGATE_URL      the scangate service, e.g. https://scangate.example.com
  SCANGATE_TOKEN    bearer credential: an API key (sg_...) or a CI OIDC ID token
                    (audience: scangate)
  SCANGATE_TOKEN_COMMAND
                    a shell command printing a fresh token, run again when the
                    service answers 401 (short-lived CI tokens); --token-command
                    and --token-file FILE (re-read on 401) take precedence
  SCANGATE_CA_FILE  CA bundle for a service certificate from a private CA
"""
CLIENT_HELP: Final = _ENVIRONMENT_HELP + "\n" + EXIT_CODES_HELP
RUN_DESCRIPTION: Final = """\
Request a grant, run COMMAND with KUBECONFIG pointing at a private kubeconfig
for it, and revoke the grant when COMMAND exits, fails or is interrupted:
SIGINT, SIGTERM and SIGHUP are forwarded to COMMAND, then the grant is revoked.
Exits with COMMAND's status. COMMAND gets KUBECONFIG, SCANGATE_GRANT_ID,
SCANGATE_NAMESPACE and SCANGATE_PODS (the granted pods, space-separated), and
does not see SCANGATE_TOKEN, SCANGATE_TOKEN_COMMAND or the GitHub Actions ID
token request variables.

COMMAND never outlives the grant: with --renew the grant is renewed while
COMMAND runs (at 2/3 of the time left, for --ttl each time, up to the policy's
lifetime cap); when the grant ends anyway (it expires, or someone revokes it:
checked every --poll-seconds), COMMAND gets SIGTERM, then SIGKILL after
--grace-seconds, and scangate run exits with 8.

A grant whose policy wants approvers (the service answers 202, pending_approval)
is waited for first, with a countdown on stderr: until it is approved and
active (then COMMAND runs as above), denied (exit 9), or no decision comes
before the request's deadline or --wait-timeout (exit 10). A wait that ends
any other way than approval leaves no pending request behind (at
--wait-timeout, on a signal, it is cancelled): a grant approved later would be
access nobody uses. --no-wait cancels the request and exits 10 at once.

example:
  scangate run -n payments --pod web-0 --scanner exec --ttl 15m -- \\
    cinc-auditor exec profile/ -t k8s-container://payments/web-0/app
"""
REQUEST_DESCRIPTION: Final = """\
Request access to pods. Prints the grant id on stdout.

Under a policy that wants approvers the service answers 202: the grant is
pending_approval, with no access yet. Without --wait the id is printed and
the approve command to run is said on stderr (exit 0). With --wait the
command waits, with a countdown on stderr, until the grant is approved and
active (then it goes on as for an immediate grant), denied (exit 9), or no
decision comes before the request's deadline or --wait-timeout (exit 10; at
--wait-timeout the request is cancelled). Ctrl-C leaves the request pending.
"""


DEFAULT_GRACE_SECONDS: Final = 10.0
DEFAULT_POLL_SECONDS: Final = 10.0


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be >= 0")
    return value


def _positive_seconds(text: str) -> float:
    value = _non_negative_seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be > 0")
    return value


def _add_wait_timeout(parser: Any, *, default_text: str) -> None:
    parser.add_argument(
        "--wait-timeout",
        type=parse_duration,
        metavar="DURATION",
        help="stop waiting for an approval decision after DURATION (e.g. 600, 10m), cancel "
        f"the request and exit 10 (default: {default_text})",
    )


def _connection_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection and output")
    group.add_argument("--url", help="scangate service URL (default: $SCANGATE_URL)")
    group.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the bearer token from FILE (default: $SCANGATE_TOKEN)",
    )
    group.add_argument(
        "--token-command",
        metavar="CMD",
        help="shell command printing a fresh token (default: $SCANGATE_TOKEN_COMMAND)",
    )
    group.add_argument(
        "--ca-file",
        metavar="FILE",
        default=os.environ.get("SCANGATE_CA_FILE"),
        help="CA bundle to verify the service's certificate (default: $SCANGATE_CA_FILE)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    group.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    return options


def _target_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("what to scan")
    group.add_argument("-n", "--namespace", required=True, help="target namespace")
    pods = group.add_mutually_exclusive_group(required=True)
    pods.add_argument(
        "--pod", dest="pods", action="append", metavar="POD", help="a pod name (repeatable)"
    )
    pods.add_argument(
        "--selector",
        "-l",
        metavar="SELECTOR",
        help="label selector, resolved once, at grant time, to the matching Running pods",
    )
    group.add_argument("--scanner", required=True, choices=SCANNERS, help="scanner profile")
    group.add_argument(
        "--ttl",
        type=parse_duration,
        metavar="DURATION",
        help="grant lifetime, e.g. 15m or 1h (default: the service's, 15m)",
    )
    group.add_argument("--reason", help="why (recorded in the audit trail)")
    group.add_argument("--cluster", help="configured cluster name (default: the service's first)")
    return options


def add_client_commands(commands: Any) -> None:
    """Add `grant`, `whoami` and `run` to the `scangate` subparsers."""
    connection, target = _connection_options(), _target_options()
    common: dict[str, Any] = {
        "formatter_class": argparse.RawDescriptionHelpFormatter,
        "epilog": CLIENT_HELP,
    }

    grant = commands.add_parser(
        "grant", help="request, inspect and revoke grants (client)", **common
    )
    actions = grant.add_subparsers(dest="grant_command", required=True, metavar="ACTION")

    request = actions.add_parser(
        "request",
        parents=[target, connection],
        help="request access; prints the grant id",
        description=REQUEST_DESCRIPTION,
        **common,
    )
    request.add_argument(
        "--wait",
        action="store_true",
        help="when the grant needs approval, wait for the decision (default: print it, exit 0)",
    )
    _add_wait_timeout(request, default_text="the request's approval deadline")
    request.add_argument(
        "--kubeconfig-out",
        metavar="FILE",
        help="also fetch the kubeconfig and write it to FILE (mode 0600)",
    )
    request.set_defaults(handler=cmd_grant_request)

    approve = actions.add_parser(
        "approve",
        parents=[connection],
        help="approve a grant waiting for your approval; prints its status and approvals",
        **common,
    )
    approve.add_argument("grant_id", metavar="ID")
    approve.add_argument("--reason", help="why (recorded in the audit trail)")
    approve.set_defaults(handler=cmd_grant_approve)

    deny = actions.add_parser(
        "deny", parents=[connection], help="deny a grant waiting for your approval", **common
    )
    deny.add_argument("grant_id", metavar="ID")
    deny.add_argument(
        "--reason", required=True, help="why (required; shown to the requester and audited)"
    )
    deny.set_defaults(handler=cmd_grant_deny)

    kubeconfig = actions.add_parser(
        "kubeconfig",
        parents=[connection],
        help="print a kubeconfig with a fresh token (requester only)",
        **common,
    )
    kubeconfig.add_argument("grant_id", metavar="ID")
    kubeconfig.add_argument("--out", metavar="FILE", help="write to FILE (mode 0600) instead")
    kubeconfig.set_defaults(handler=cmd_grant_kubeconfig)

    revoke = actions.add_parser(
        "revoke", parents=[connection], help="revoke a grant (idempotent)", **common
    )
    revoke.add_argument("grant_id", metavar="ID")
    revoke.add_argument("--reason", help="why (recorded in the audit trail)")
    revoke.set_defaults(handler=cmd_grant_revoke)

    listing = actions.add_parser(
        "list", parents=[connection], help="list your grants (admins: all)", **common
    )
    listing.add_argument("--status", choices=GRANT_STATUSES)
    listing.add_argument("-n", "--namespace")
    listing.add_argument("--cluster")
    listing.add_argument("--limit", type=int, default=50, help="page size (default: 50)")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=cmd_grant_list)

    show = actions.add_parser("show", parents=[connection], help="show one grant", **common)
    show.add_argument("grant_id", metavar="ID")
    show.set_defaults(handler=cmd_grant_show)

    events = actions.add_parser(
        "events",
        parents=[connection],
        help="the grant's audit trail, oldest first (the grant guard's decisions included)",
        **common,
    )
    events.add_argument("grant_id", metavar="ID")
    events.set_defaults(handler=cmd_grant_events)

    whoami = commands.add_parser(
        "whoami",
        parents=[connection],
        help="who scangate thinks you are, and what you may request (client)",
        **common,
    )
    whoami.set_defaults(handler=cmd_whoami)

    run = commands.add_parser(
        "run",
        parents=[target, connection],
        help="run a command with a grant, revoked when it ends (client)",
        usage="scangate run [options] -- COMMAND [ARGS...]",
        description=RUN_DESCRIPTION,
        **common,
    )
    run.add_argument(
        "--grant-id-file",
        metavar="FILE",
        help="write the grant id to FILE (for a cleanup step that runs even if this job is killed)",
    )
    approval = run.add_argument_group("when the grant needs approval")
    approval.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="do not wait for an approval: cancel the request and exit 10",
    )
    _add_wait_timeout(approval, default_text="the request's approval deadline")
    ending = run.add_argument_group("when the grant ends")
    ending.add_argument(
        "--renew",
        action="store_true",
        help="renew the grant while COMMAND runs, within the policy's lifetime cap",
    )
    ending.add_argument(
        "--grace-seconds",
        type=_non_negative_seconds,
        default=DEFAULT_GRACE_SECONDS,
        metavar="SECONDS",
        help="time between SIGTERM and SIGKILL when the grant ends first "
        f"(default: {DEFAULT_GRACE_SECONDS:g})",
    )
    ending.add_argument(
        "--poll-seconds",
        type=_positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help="how often to check that the grant is still active, to notice a revocation "
        f"(default: {DEFAULT_POLL_SECONDS:g})",
    )
    run.add_argument("command", nargs="*", metavar="COMMAND", help="the command, after --")
    run.set_defaults(handler=cmd_run)

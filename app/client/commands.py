"""The client subcommands: `grant request|approve|deny|kubeconfig|revoke|list|show|events` and
`whoami`.

Each handler takes the parsed arguments and returns an exit code (`app.client.errors.ExitCode`).
Results go to stdout (text, or the API's JSON with `--output json`); progress, warnings and
errors go to stderr, so `ID=$(scangate grant request ...)` captures only the grant id.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

from app.client.api import ScangateClient, connection_from
from app.client.approval_wait import (
    PENDING_APPROVAL,
    Countdown,
    NoDecisionInTime,
    WaitInterrupted,
    approval_summary,
    approve_command,
    wait_for_approval,
)
from app.client.errors import ClientError, ExitCode, UsageError
from app.client.files import write_private_file
from app.client.output import as_json, events_text, grant_text, grants_table, whoami_text

Handler = Callable[[argparse.Namespace], int]


def reports_errors(handler: Handler) -> Handler:
    """Turn `ClientError`s into a readable message on stderr and their exit code."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ClientError as exc:
            print(f"scangate: error: {exc}", file=sys.stderr)
            return int(exc.exit_code)
        except KeyboardInterrupt:
            print("scangate: interrupted", file=sys.stderr)
            return ExitCode.INTERRUPTED

    return run


def client_for(args: argparse.Namespace) -> ScangateClient:
    return ScangateClient(
        connection_from(
            url=args.url,
            token_file=args.token_file,
            token_command=args.token_command,
            timeout=args.timeout,
            ca_file=args.ca_file,
        )
    )


def note(message: str) -> None:
    print(f"scangate: {message}", file=sys.stderr)


def grant_request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /v1/grants body from `grant request` / `run` arguments."""
    body: dict[str, Any] = {"namespace": args.namespace, "scanner": args.scanner}
    if args.pods:
        body["pods"] = args.pods
    else:
        body["selector"] = args.selector
    for name, value in (("ttl_seconds", args.ttl), ("reason", args.reason)):
        if value is not None:
            body[name] = value
    if args.cluster:
        body["cluster"] = args.cluster
    return body


def describe_grant(grant: dict[str, Any]) -> str:
    target = ",".join(grant.get("pods") or []) or f"selector {grant.get('selector')!r}"
    access = (
        f"grant {grant['id']}: {grant['scanner']} access to {grant['namespace']}/{target} "
        f"on cluster {grant['cluster']}"
    )
    if grant.get("status") == PENDING_APPROVAL:
        deadline = (grant.get("approval") or {}).get("deadline")
        return (
            f"{access} needs approval ({approval_summary(grant)}, decision due by {deadline}): "
            f"an approver runs `{approve_command(grant['id'])}`"
        )
    return f"{access} until {grant['expires_at']}"


def decision_text(grant: dict[str, Any]) -> str:
    """What `grant approve|deny` print: the grant's status and approvals afterwards."""
    line = f"grant {grant['id']}: {grant['status']}, {approval_summary(grant)}"
    approval = grant.get("approval") or {}
    if grant["status"] == "denied" and approval.get("denied_by"):
        line += f"; denied by {approval['denied_by']}"
        if approval.get("denial_reason"):
            line += f": {approval['denial_reason']}"
    elif grant["status"] == "active":
        line += f"; active until {grant.get('expires_at')}"
    elif grant["status"] in ("failed", "rejected"):
        line += f"; could not be provisioned: {grant.get('last_error') or 'no reason given'}"
    return line


def wait_for_decision(
    client: ScangateClient, grant: dict[str, Any], wait_timeout: float | None
) -> dict[str, Any]:
    """`grant request --wait`: the grant once approved and active. Ctrl-C leaves the request
    pending (the person at the terminal decides what becomes of it); --wait-timeout passing
    cancels it, since no script is left to use a grant approved after that."""
    try:
        return wait_for_approval(
            client, grant, wait_timeout=wait_timeout, countdown=Countdown(sys.stderr)
        )
    except WaitInterrupted:
        raise ClientError(
            f"interrupted: grant {grant['id']} is still waiting for approval; "
            f"`scangate grant show {grant['id']}` follows it, "
            f"`scangate grant revoke {grant['id']}` cancels it",
            exit_code=ExitCode.INTERRUPTED,
        ) from None
    except NoDecisionInTime as exc:
        if not exc.gave_up:
            raise
        status = revoke_quietly(client, grant["id"], "no approval decision within --wait-timeout")
        cancelled = "; the request was cancelled" if status is not None else ""
        raise NoDecisionInTime(f"{exc}{cancelled}", gave_up=True) from None


def revoke_quietly(client: ScangateClient, grant_id: str, reason: str) -> str | None:
    """Best effort, for cleaning up: the grant's status afterwards, or None (and a warning on
    stderr) when the service could not be told."""
    try:
        grant = client.revoke_grant(grant_id, reason)
    except ClientError as exc:
        note(
            f"warning: could not revoke grant {grant_id} ({exc}); it ends at its expiry, "
            f"or run: scangate grant revoke {grant_id}"
        )
        return None
    return str(grant.get("status"))


@reports_errors
def cmd_grant_request(args: argparse.Namespace) -> int:
    if args.wait_timeout is not None and not args.wait:
        raise UsageError("--wait-timeout needs --wait")
    with client_for(args) as client:
        grant = client.create_grant(grant_request_body(args))
        if grant.get("status") == PENDING_APPROVAL:
            note(describe_grant(grant))
            if not args.wait:
                return _pending_without_waiting(args, grant)
            grant = wait_for_decision(client, grant, args.wait_timeout)
            note(f"grant {grant['id']} approved ({approval_summary(grant)})")
        if args.kubeconfig_out:
            try:
                write_private_file(args.kubeconfig_out, client.kubeconfig(grant["id"]))
            except (ClientError, OSError) as exc:
                # A grant whose credentials never arrived is access nobody will use: end it
                # rather than leave it open until it expires.
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                status = revoke_quietly(client, grant["id"], "kubeconfig could not be written")
                code = exc.exit_code if isinstance(exc, ClientError) else ExitCode.FAILURE
                raise ClientError(
                    f"grant {grant['id']} was created but its kubeconfig could not be written "
                    f"to {args.kubeconfig_out}: {reason}"
                    + ("; the grant has been revoked" if status is not None else ""),
                    exit_code=code,
                ) from None
    if args.output == "json":
        print(as_json(grant))
    else:
        print(grant["id"])
    note(describe_grant(grant))
    if args.kubeconfig_out:
        note(f"kubeconfig written to {args.kubeconfig_out} (mode 0600)")
    return ExitCode.OK


def _pending_without_waiting(args: argparse.Namespace, grant: dict[str, Any]) -> int:
    """A 202 without --wait: the pending grant's id on stdout (as for an immediate grant), and
    what happens next on stderr."""
    print(as_json(grant) if args.output == "json" else grant["id"])
    if args.kubeconfig_out:
        note(
            f"no kubeconfig written to {args.kubeconfig_out}: the grant is not active yet; "
            f"once approved: scangate grant kubeconfig {grant['id']} --out {args.kubeconfig_out}"
        )
    note(f"not waiting (--wait waits for the decision); `scangate grant show {grant['id']}`")
    return ExitCode.OK


@reports_errors
def cmd_grant_approve(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        grant = client.approve_grant(args.grant_id, args.reason)
    print(as_json(grant) if args.output == "json" else decision_text(grant))
    return ExitCode.OK


@reports_errors
def cmd_grant_deny(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise ClientError("--reason must say why the request is denied", exit_code=ExitCode.USAGE)
    with client_for(args) as client:
        grant = client.deny_grant(args.grant_id, args.reason)
    print(as_json(grant) if args.output == "json" else decision_text(grant))
    return ExitCode.OK


@reports_errors
def cmd_grant_kubeconfig(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        text = client.kubeconfig(args.grant_id, as_json=args.output == "json")
    if args.out:
        try:
            write_private_file(args.out, text)
        except OSError as exc:
            raise ClientError(f"cannot write {args.out}: {exc.strerror}") from None
        note(f"kubeconfig written to {args.out} (mode 0600)")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return ExitCode.OK


@reports_errors
def cmd_grant_revoke(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        grant = client.revoke_grant(args.grant_id, args.reason)
    if args.output == "json":
        print(as_json(grant))
    elif grant["status"] == "revoking":
        print(
            f"grant {grant['id']}: revoking (the cluster did not answer; scangate finishes "
            "the revocation in the background)"
        )
    else:
        print(f"grant {grant['id']}: {grant['status']}")
    return ExitCode.OK


@reports_errors
def cmd_grant_list(args: argparse.Namespace) -> int:
    grants: list[dict[str, Any]] = []
    cursor: str | None = None
    with client_for(args) as client:
        while True:
            page = client.list_grants(
                status=args.status,
                namespace=args.namespace,
                cluster=args.cluster,
                limit=args.limit,
                cursor=cursor,
            )
            grants += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor or not args.all:
                break
    if args.output == "json":
        print(as_json({"items": grants, "next_cursor": cursor}))
    elif grants:
        print(grants_table(grants))
        if cursor:
            note("more grants exist: pass --all to list every page")
    else:
        note("no grants")
    return ExitCode.OK


@reports_errors
def cmd_grant_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        grant = client.get_grant(args.grant_id)
    print(as_json(grant) if args.output == "json" else grant_text(grant))
    return ExitCode.OK


@reports_errors
def cmd_grant_events(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        events = client.grant_events(args.grant_id)
    print(as_json(events) if args.output == "json" else events_text(events.get("items", [])))
    return ExitCode.OK


@reports_errors
def cmd_whoami(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        identity = client.whoami()
    print(as_json(identity) if args.output == "json" else whoami_text(identity))
    return ExitCode.OK

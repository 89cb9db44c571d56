"""`scangate run`: request a grant, run one command with it, and always revoke it.

The scripts this replaces left access open whenever the scan failed or the job was cancelled.
Here the revocation does not depend on how the command ends:
- the command exits (any status): revoke, then exit with the command's status;
- SIGINT / SIGTERM / SIGHUP arrive (a cancelled CI job): forward the signal to the command, then
  revoke at once - without waiting for the command to finish, because CI runners follow up
  with SIGKILL after a few seconds and a revocation must not race that - then wait for the
  command and exit with its status (128+N when the signal killed it);
- the command cannot be started: revoke, exit 126/127 like a shell.
Only SIGKILL of this process defeats it; the grant's TTL is the backstop then, which is why
`--ttl` should stay close to the scan's real duration.

The command also never outlives the grant (`grant_watch.py`): with `--renew` the grant is
renewed while the command runs, within its policy's lifetime cap; when the grant ends anyway
(expired, or revoked by someone else), the command gets SIGTERM, then SIGKILL after
`--grace-seconds`, and `scangate run` exits with 8 (ExitCode.GRANT_ENDED), whatever the
command's own status, because the scan it ran was cut short.

The kubeconfig lives in a private (0600) temporary file that is deleted on the way out. The
command gets `KUBECONFIG`, `SCANGATE_GRANT_ID`, `SCANGATE_NAMESPACE` and `SCANGATE_PODS` (the
granted pods, space-separated: what a selector resolved to), but not the credentials scangate
itself uses (`SCANGATE_TOKEN`, `SCANGATE_TOKEN_COMMAND`, GitHub's ID token request variables):
the scanner needs the pods it was granted, not the right to ask for more.

A grant whose policy wants approvers (202, `pending_approval`) is waited for first
(`approval_wait.py`; `--wait-timeout`, `--no-wait`), and the run goes on as above once it is
active. The request never outlives the run: a wait that ends any other way (denied, no decision
in time, a signal) leaves no pending request behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

from app.client.api import ScangateClient
from app.client.approval_wait import (
    PENDING_APPROVAL,
    Countdown,
    NoDecisionInTime,
    RequestEnded,
    WaitInterrupted,
    wait_for_approval,
)
from app.client.commands import (
    client_for,
    describe_grant,
    grant_request_body,
    note,
    reports_errors,
    revoke_quietly,
)
from app.client.errors import ExitCode, UsageError
from app.client.files import private_temp_file
from app.client.grant_watch import GrantWatch

# SIGHUP: a runner whose session ends. getattr keeps the module importable where it is absent.
FORWARDED_SIGNALS: Final = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
_POLL_SECONDS: Final = 0.1
# The service's minimum ttl_seconds.
MIN_RENEW_TTL_SECONDS: Final = 30


class _Interruptions:
    """Signals received while the command runs; forwarded to it from the handler itself so it
    learns immediately, even while the main loop is busy revoking."""

    def __init__(self, *, terminal: bool) -> None:
        self.received: list[int] = []
        self.child: subprocess.Popen[bytes] | None = None
        self._pending: list[int] = []  # arrived while the command was starting
        # On a terminal, Ctrl-C already reached the command (same process group): sending it
        # again would count as a second Ctrl-C, which many programs treat as "abort cleanup".
        # The command stays in our process group on purpose: it keeps the terminal, and a CI
        # runner that kills the whole group takes it down too instead of orphaning it.
        self._skip = {signal.SIGINT} if terminal else set()

    def forwards(self, signum: int) -> bool:
        return signum not in self._skip

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.child is not None:
            self._forward(signum)
        elif len(self.received) > 1:
            # Asked twice while still talking to scangate (a hung request?): give up now. A
            # grant created meanwhile ends at its TTL.
            raise KeyboardInterrupt
        else:
            self._pending.append(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """From now on signals go to `child`, starting with those that arrived meanwhile."""
        self.child = child
        while self._pending:
            self._forward(self._pending.pop(0))

    def _forward(self, signum: int) -> None:
        child = self.child
        if child is not None and child.returncode is None and self.forwards(signum):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)


@contextlib.contextmanager
def _handling(interruptions: _Interruptions) -> Iterator[None]:
    previous = {s: signal.signal(s, interruptions.handle) for s in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# Credentials that would let the command ask scangate (or the CI's token endpoint, for any
# audience) for more than it was given.
_WITHHELD_VARIABLES: Final = (
    "SCANGATE_TOKEN",
    "SCANGATE_TOKEN_COMMAND",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)


def _command_env(kubeconfig: Path, grant: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _WITHHELD_VARIABLES}
    env["KUBECONFIG"] = str(kubeconfig)
    env["SCANGATE_GRANT_ID"] = grant["id"]
    env["SCANGATE_NAMESPACE"] = grant["namespace"]
    # What a selector resolved to, so the command can scan exactly the granted pods (names are
    # DNS-1123, so a space never occurs inside one: `for pod in $SCANGATE_PODS`).
    env["SCANGATE_PODS"] = " ".join(grant.get("pods") or [])
    return env


def _exit_status(returncode: int) -> int:
    # Popen reports death by signal N as -N; shells (and CI systems) expect 128+N.
    return 128 - returncode if returncode < 0 else returncode


class _Revocation:
    """Revokes the grant exactly once, whichever path gets there first."""

    def __init__(self, client: ScangateClient, grant_id: str) -> None:
        self._client = client
        self._grant_id = grant_id
        self.done = False

    def settled(self) -> None:
        """The grant ended at the service by itself (denied, expired...): nothing to revoke."""
        self.done = True

    def __call__(self, reason: str) -> bool:
        """Whether the service was told (now, or by an earlier call)."""
        if self.done:
            return True
        self.done = True
        status = revoke_quietly(self._client, self._grant_id, reason)
        if status == "revoking":
            note(f"grant {self._grant_id}: revoking (scangate finishes it in the background)")
        elif status is not None:
            note(f"grant {self._grant_id} {status}")
        return status is not None


class _Stopping:
    """Ends a command whose grant ended: SIGTERM now, SIGKILL once the grace period passes."""

    def __init__(self, child: subprocess.Popen[bytes], grace_seconds: float) -> None:
        self._child = child
        self._kill_at = time.monotonic() + grace_seconds
        self._killed = False
        self._signal(signal.SIGTERM)

    def tick(self) -> None:
        if not self._killed and time.monotonic() >= self._kill_at:
            self._killed = True
            note("the command is still running after the grace period: SIGKILL")
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self._child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.send_signal(signum)


def _supervise(
    command: list[str],
    env: dict[str, str],
    interruptions: _Interruptions,
    revoke: _Revocation,
    watch: GrantWatch,
    grace_seconds: float,
) -> int:
    """The command's exit status, or ExitCode.GRANT_ENDED (the enum itself, so a command's own
    status 8 is told apart) when the command was stopped because the grant ended."""
    if interruptions.received:
        return 128 + interruptions.received[0]  # cancelled before the command started
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        note(f"error: command not found: {command[0]}")
        return 127
    except PermissionError:
        note(f"error: command not executable: {command[0]}")
        return 126
    interruptions.attach(child)
    watch.start()
    stopping: _Stopping | None = None
    while True:
        try:
            returncode: int | None = child.wait(timeout=_POLL_SECONDS)
        except subprocess.TimeoutExpired:
            returncode = None
        if interruptions.received and not revoke.done:
            # The run is ending by the caller's signal: that path, not the grant's end, applies.
            watch.stop()
            signum = interruptions.received[0]
            how = "forwarded to the command" if interruptions.forwards(signum) else "not forwarded"
            name = signal.Signals(signum).name
            note(f"{name} received: {how}; revoking the grant now")
            revoke(f"scangate run interrupted by {name}")
        if returncode is not None:
            watch.stop()
            if stopping is not None:
                note(f"the command was stopped (status {_exit_status(returncode)})")
                return ExitCode.GRANT_ENDED
            return _exit_status(returncode)
        if stopping is None and not revoke.done and (ended := watch.ended()) is not None:
            watch.stop()
            note(f"{ended}: stopping the command (SIGTERM, then SIGKILL after {grace_seconds:g} s)")
            stopping = _Stopping(child, grace_seconds)
        if stopping is not None:
            stopping.tick()


@reports_errors
def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command: scangate run [options] -- COMMAND [ARGS...]")
    interruptions = _Interruptions(terminal=sys.stdin is not None and sys.stdin.isatty())
    # Handlers go in before the grant is requested: a signal during the request is remembered,
    # and the grant it creates is revoked instead of being leaked.
    with _handling(interruptions), client_for(args) as client:
        grant = client.create_grant(grant_request_body(args))
        note(describe_grant(grant))
        revoke = _Revocation(client, grant["id"])
        if args.grant_id_file:
            with contextlib.suppress(OSError):  # a convenience; never worth failing the scan
                Path(args.grant_id_file).write_text(grant["id"] + "\n", encoding="utf-8")
        kubeconfig: Path | None = None
        try:
            if grant.get("status") == PENDING_APPROVAL:
                approved = _approved(client, grant, args, interruptions, revoke)
                if isinstance(approved, int):
                    return approved
                grant = approved
                note(describe_grant(grant))
            watch = GrantWatch(
                client,
                grant,
                renew_ttl_seconds=_renewal_ttl(grant, args.ttl) if args.renew else None,
                poll_seconds=args.poll_seconds,
            )
            kubeconfig = private_temp_file(
                client.kubeconfig(grant["id"]), prefix=f"scangate-{grant['id']}-"
            )
            env = _command_env(kubeconfig, grant)
            status = _supervise(command, env, interruptions, revoke, watch, args.grace_seconds)
            if status is ExitCode.GRANT_ENDED:
                return int(status)
            note(f"command exited with status {status}")
            return status
        finally:
            if kubeconfig is not None:
                with contextlib.suppress(FileNotFoundError):
                    kubeconfig.unlink()
            revoke("scangate run finished")


def _approved(
    client: ScangateClient,
    grant: dict[str, Any],
    args: argparse.Namespace,
    interruptions: _Interruptions,
    revoke: _Revocation,
) -> dict[str, Any] | int:
    """The grant once approved and active, or the exit status of a run interrupted while
    waiting. Every other way the waiting ends is raised. The request never outlives the run:
    unless it already ended at the service, it is cancelled (revoked) on the way out, since a
    grant approved after the run gave up would be access that nobody uses."""
    if not args.wait:
        cancelled = revoke("approval required and scangate run --no-wait")
        raise NoDecisionInTime(
            f"grant {grant['id']} needs approval and --no-wait was given"
            + (": the request was cancelled" if cancelled else ""),
            gave_up=True,
        )
    try:
        return wait_for_approval(
            client,
            grant,
            wait_timeout=args.wait_timeout,
            countdown=Countdown(sys.stderr),
            interrupted=lambda: bool(interruptions.received),
        )
    except WaitInterrupted:
        signum = interruptions.received[0] if interruptions.received else signal.SIGINT
        name = signal.Signals(signum).name
        note(f"{name} received while waiting for approval: cancelling the request")
        revoke(f"scangate run interrupted by {name} while waiting for approval")
        return 128 + signum
    except RequestEnded:
        revoke.settled()
        raise
    except NoDecisionInTime as exc:
        if not exc.gave_up:
            revoke.settled()  # approval_expired, or about to be: the service ends it
            raise
        cancelled = revoke("no approval decision within --wait-timeout")
        raise NoDecisionInTime(
            f"{exc}; the request was cancelled" if cancelled else str(exc), gave_up=True
        ) from None


def _renewal_ttl(grant: dict[str, Any], ttl: int | None) -> int:
    """What each renewal asks for: the TTL given, else the lifetime the service chose, counted
    from activation (for an approved grant, its last approval: the TTL starts there)."""
    if ttl is not None:
        return ttl
    approvals = (grant.get("approval") or {}).get("approvals") or []
    started = max([grant["created_at"], *(entry["at"] for entry in approvals)], key=_instant)
    expires = _instant(grant["expires_at"])
    return max(MIN_RENEW_TTL_SECONDS, round((expires - _instant(started)).total_seconds()))


def _instant(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))

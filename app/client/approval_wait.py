"""Waiting for an approval decision: what `scangate grant request --wait` and `scangate run` do
when the service answers 202 with a grant in `pending_approval` (its policy wants approvers).

The service has no long-poll endpoint, so the grant is polled (GET /v1/grants/{id}) every 2 s,
or later when the service asks for it with Retry-After. A poll that fails for a reason that may
pass (scangate unreachable, a 5xx, after the client's own retries) is reported once and the
waiting goes on: an outage of a few seconds must not throw away a request someone is about to
approve. The waiting ends:
- `active`: approved and provisioned; the grant is returned;
- `denied`: exit 9 (ApprovalDenied), saying who denied it and why;
- `approval_expired` (or the deadline passed here, and a few seconds more, without the
  service saying so): exit 10 (NoDecisionInTime);
- `--wait-timeout` passed first: exit 10 too, `gave_up` set so the caller cancels the request
  (an approval arriving later would open access that nobody is there to use);
- anything else the grant became (revoked by its requester, failed to provision after the last
  approval): RequestEnded with the matching exit code and the service's reason.

A countdown on stderr shows approvals so far and the time left. On a terminal it is one line
rewritten in place; anywhere else (a CI log, where every rewrite would become a line) a line
is written when the approvals change and about every 10 s otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from app.client.api import ScangateClient
from app.client.errors import ApiError, ClientError, ExitCode, Unreachable

PENDING_APPROVAL: Final = "pending_approval"
POLL_SECONDS: Final = 2.0
# A Retry-After larger than this is not believed: a decision must not go unnoticed for long.
MAX_POLL_SECONDS: Final = 30.0
LOG_LINE_SECONDS: Final = 10.0
# Past the deadline by this machine's clock, the service still decides: its clock may differ a
# little, and its reaper marks the request approval_expired on its own schedule.
DEADLINE_GRACE_SECONDS: Final = 10.0
# How often the countdown is redrawn and an interruption noticed between polls.
_TICK_SECONDS: Final = 0.2


class RequestEnded(ClientError):
    """The request is over at the service without becoming active (denied, revoked, failed to
    provision): there is nothing left to cancel."""


class ApprovalDenied(RequestEnded):
    exit_code = ExitCode.APPROVAL_DENIED


class NoDecisionInTime(ClientError):
    """No decision in time. `gave_up`: the caller's --wait-timeout passed before the request's
    own deadline, so the request is still pending at the service."""

    exit_code = ExitCode.APPROVAL_TIMEOUT

    def __init__(self, message: str, *, gave_up: bool) -> None:
        super().__init__(message)
        self.gave_up = gave_up


class WaitInterrupted(Exception):
    """The caller interrupted the waiting (Ctrl-C, a signal); the request is still pending."""


def approval_summary(grant: dict[str, Any]) -> str:
    """`1/2 approvals`, from the grant's `approval` object."""
    approval = grant.get("approval") or {}
    return f"{len(approval.get('approvals') or [])}/{approval.get('required', '?')} approvals"


def approve_command(grant_id: str) -> str:
    return f"scangate grant approve {grant_id}"


def time_left_text(seconds: float) -> str:
    """`14:32`, or `1:02:03` from an hour on."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Countdown:
    """The waiting's progress on stderr: a line rewritten in place on a terminal, a line every
    LOG_LINE_SECONDS (and on every change) elsewhere."""

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._drawn = False  # a rewritable line is on the terminal
        self._last_text: str | None = None
        self._last_key: str | None = None
        self._last_line_at = 0.0

    def show(self, text: str, *, key: str) -> None:
        """Show `text`; `key` names what it says apart from the time left, so a change of it
        (a new approval) is always written out."""
        if self._interactive:
            if text != self._last_text or not self._drawn:
                # A line longer than the terminal wraps, and \r then rewrites only its last
                # part: every redraw would leave a line behind.
                self._write("\r" + text[: self._width() - 1] + "\x1b[K")
                self._drawn = True
        elif key != self._last_key or time.monotonic() - self._last_line_at >= LOG_LINE_SECONDS:
            self._write(text + "\n")
            self._last_line_at = time.monotonic()
        self._last_text, self._last_key = text, key

    def note(self, text: str) -> None:
        """A message of its own line, without tearing the countdown apart."""
        self._write(("\r\x1b[K" if self._drawn else "") + text + "\n")
        self._drawn = False

    def close(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = False

    def _width(self) -> int:
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        return columns if columns > 1 else 10_000  # 0: a terminal that does not say

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def wait_for_approval(
    client: ScangateClient,
    grant: dict[str, Any],
    *,
    wait_timeout: float | None,
    countdown: Countdown,
    interrupted: Callable[[], bool] = lambda: False,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Poll `grant` until it is active (returned) or the waiting ends otherwise (raised)."""
    poller = _Poller(client, grant, countdown, poll_seconds)
    started = time.monotonic()
    give_up_at = started + wait_timeout if wait_timeout is not None else None
    deadline_at = _monotonic(_deadline(grant))
    try:
        while True:
            current = poller.grant
            if _decided(current):
                return current
            if interrupted():
                raise WaitInterrupted
            now = time.monotonic()
            pending = current.get("status") == PENDING_APPROVAL
            overdue = now - deadline_at if deadline_at is not None else None  # s past it
            past_deadline = overdue is not None and overdue >= 0
            if pending and give_up_at is not None and now >= give_up_at:
                # One last look: an approval may have arrived in the last moment.
                poller.poll()
                if _decided(poller.grant):
                    return poller.grant
                if poller.grant.get("status") == PENDING_APPROVAL:
                    raise _no_decision(poller.grant, gave_up=not past_deadline)
                continue
            if pending and overdue is not None and overdue >= DEADLINE_GRACE_SECONDS:
                raise _no_decision(current, gave_up=False)
            ends = min((t for t in (give_up_at, deadline_at) if t is not None), default=None)
            countdown.show(
                _progress(current, None if ends is None else ends - now), key=_key(current)
            )
            if now >= poller.next_poll_at:
                poller.poll()
            time.sleep(_TICK_SECONDS)
    except KeyboardInterrupt:
        raise WaitInterrupted from None
    finally:
        countdown.close()


class _Poller:
    """The latest known state of the grant, and when to ask again."""

    def __init__(
        self,
        client: ScangateClient,
        grant: dict[str, Any],
        countdown: Countdown,
        poll_seconds: float,
    ) -> None:
        self.grant = grant
        self._client = client
        self._countdown = countdown
        self._poll_seconds = poll_seconds
        self._failing = False
        self.next_poll_at = time.monotonic() + poll_seconds

    def poll(self) -> None:
        grant_id = str(self.grant["id"])
        retry_after: float | None = None
        try:
            self.grant, retry_after = self._client.poll_grant(grant_id)
        except (Unreachable, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status < 500:
                raise  # 401, 403, 404: asking again will not change the answer
            retry_after = exc.retry_after if isinstance(exc, ApiError) else None
            if not self._failing:
                self._countdown.note(
                    f"scangate: warning: could not check grant {grant_id} ({exc}); still waiting"
                )
            self._failing = True
        else:
            if self._failing:
                self._countdown.note(f"scangate: grant {grant_id} can be checked again")
            self._failing = False
        wait = max(self._poll_seconds, min(retry_after or 0.0, MAX_POLL_SECONDS))
        self.next_poll_at = time.monotonic() + wait


def _decided(grant: dict[str, Any]) -> bool:
    """True once the grant is active; raises for every other end of the waiting."""
    status = grant.get("status")
    grant_id = grant.get("id")
    if status == "active":
        return True
    if status in (PENDING_APPROVAL, "provisioning"):  # provisioning: approved, being set up
        return False
    if status == "denied":
        approval = grant.get("approval") or {}
        reason = approval.get("denial_reason")
        raise ApprovalDenied(
            f"grant {grant_id} was denied by {approval.get('denied_by') or 'an approver'}"
            + (f": {reason}" if reason else "")
        )
    if status == "approval_expired":
        raise _no_decision(grant, gave_up=False)
    if status in ("failed", "rejected"):
        raise RequestEnded(
            f"grant {grant_id} was approved but could not be provisioned ({status}): "
            f"{grant.get('last_error') or 'no reason given'}",
            exit_code=ExitCode.REJECTED if status == "rejected" else ExitCode.FAILURE,
        )
    raise RequestEnded(
        f"grant {grant_id} is {status}: it ended while waiting for approval",
        exit_code=ExitCode.GRANT_ENDED,
    )


def _no_decision(grant: dict[str, Any], *, gave_up: bool) -> NoDecisionInTime:
    grant_id = grant.get("id")
    summary = approval_summary(grant)
    if gave_up:
        return NoDecisionInTime(
            f"no approval decision for grant {grant_id} within --wait-timeout ({summary})",
            gave_up=True,
        )
    # Past the deadline by our clock, the service's reaper may not have marked it yet.
    ended = "it is" if grant.get("status") == "approval_expired" else "the service marks it"
    return NoDecisionInTime(
        f"no approval decision for grant {grant_id} before its deadline {_deadline(grant)} "
        f"({summary}); {ended} approval_expired",
        gave_up=False,
    )


def _progress(grant: dict[str, Any], seconds_left: float | None) -> str:
    grant_id = str(grant.get("id"))
    if grant.get("status") == "provisioning":
        return f"scangate: grant {grant_id} approved ({approval_summary(grant)}): provisioning"
    left = "" if seconds_left is None else f", {time_left_text(seconds_left)} left"
    return (
        f"scangate: waiting for approval of grant {grant_id}: {approval_summary(grant)}{left} "
        f"({approve_command(grant_id)})"
    )


def _key(grant: dict[str, Any]) -> str:
    return f"{grant.get('status')} {approval_summary(grant)}"


def _deadline(grant: dict[str, Any]) -> str | None:
    deadline = (grant.get("approval") or {}).get("deadline")
    return str(deadline) if deadline else None


def _monotonic(rfc3339: str | None) -> float | None:
    # The wall clock only converts the service's deadline into time left, once; the waiting
    # itself is on the monotonic clock, which no NTP step moves.
    if rfc3339 is None:
        return None
    moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(UTC)
    return time.monotonic() + (moment - datetime.now(UTC)).total_seconds()

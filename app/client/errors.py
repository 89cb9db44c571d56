"""Client errors and the exit codes they map to (documented in `scangate --help`).

Scripts branch on these, so they are stable: a pipeline can tell "denied by policy" (fix the
policy, do not retry) from "scangate is unavailable" (retry later).
"""

from __future__ import annotations

import enum
from typing import Any, Final


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # anything else, including errors inside scangate (5xx)
    USAGE = 2  # bad arguments, or SCANGATE_URL / the token missing
    UNAUTHENTICATED = 3  # 401: the token is missing, expired or not accepted
    DENIED = 4  # 403: no policy allows the request
    NOT_FOUND = 5  # 404: no such grant (or not yours)
    REJECTED = 6  # 400/409/422: the request cannot be granted as asked
    UNAVAILABLE = 7  # scangate or its cluster cannot be reached (connection, timeout, 502-504)
    GRANT_ENDED = 8  # run: the grant ended (expired, revoked) first, so the command was stopped
    APPROVAL_DENIED = 9  # the grant needed approval and an approver denied it
    APPROVAL_TIMEOUT = 10  # no approval decision in time (the request's deadline or --wait-timeout)
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports it


EXIT_CODES_HELP: Final = """\
exit codes:
  0    success
  1    failure (including errors inside scangate)
  2    usage error, or SCANGATE_URL / the token missing
  3    not authenticated (token missing, expired or not accepted)
  4    denied by policy or not allowed
  5    grant not found
  6    request rejected (invalid, too many pods, no pods match...)
  7    scangate or its cluster unavailable; retrying later may work
  8    run: the grant ended (expired without renewal, or revoked) before the
       command did, so the command was stopped (SIGTERM, then SIGKILL after
       --grace-seconds); or a request waiting for approval was revoked
  9    the grant needed approval and an approver denied it
  10   no approval decision in time: the request's approval deadline passed
       (it is approval_expired), or --wait-timeout passed (the request is then
       cancelled), or run --no-wait met a grant that needs approval
  130  interrupted (Ctrl-C); grant request --wait leaves the request pending
  run: otherwise the command's own exit status (128+N when it is killed by
       signal N, 126 when it cannot be executed, 127 when it is not found);
       1-7, 9 or 10 as above when scangate fails before the command starts
"""


class ClientError(Exception):
    """A failure to report to the user, with the exit code it means. `str()` is safe to show:
    it never contains the token."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ClientError):
    exit_code = ExitCode.USAGE


class Unreachable(ClientError):
    exit_code = ExitCode.UNAVAILABLE


class ApiError(ClientError):
    """An RFC 9457 problem (or any non-2xx answer) from the service."""

    def __init__(
        self, status: int, problem: dict[str, Any], *, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.problem = problem
        self.retry_after = retry_after
        super().__init__(_describe(status, problem), exit_code=exit_code_for(status))


def exit_code_for(status: int) -> ExitCode:
    if status == 401:
        return ExitCode.UNAUTHENTICATED
    if status == 403:
        return ExitCode.DENIED
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (400, 409, 422):
        return ExitCode.REJECTED
    if status in (502, 503, 504):
        return ExitCode.UNAVAILABLE
    return ExitCode.FAILURE


def _describe(status: int, problem: dict[str, Any]) -> str:
    title = str(problem.get("title") or f"HTTP {status}")
    detail = problem.get("detail")
    lines = [f"{title} ({status}): {detail}" if detail else f"{title} ({status})"]
    for error in problem.get("errors") or []:
        if isinstance(error, dict) and error.get("field"):
            lines.append(f"  {error['field']}: {error.get('message', 'invalid')}")
    if status == 401:
        lines.append(
            "  hint: check SCANGATE_TOKEN / --token-file (an API key, or an OIDC ID token "
            "issued for scangate's audience and not yet expired)"
        )
    return "\n".join(lines)

"""`ScangateClient`: the service's REST API over httpx, as the CLI uses it.

Where the URL and token come from is decided in `connection_from` (the token: see
`credentials.py`). The token is only ever put in the Authorization header: it is not logged,
not part of any error message, and httpx never includes headers in its exceptions. A 401 makes
the client refresh the credential once and repeat the request (short-lived CI tokens).

Retries: only idempotent calls (reads, revoke) are retried, on connection errors and 502-504,
honouring Retry-After, a few times. Creating a grant is never retried automatically: a request
that reached the service before the connection broke would otherwise create a second grant.
Approving and denying are not retried either: a decision that was recorded before the
connection broke would come back as "already approved" / "not pending" (409), hiding that it
succeeded; the approver sees the failure and runs the command again, or `grant show`s it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from app.client.credentials import Credential, credential_from
from app.client.errors import ApiError, Unreachable, UsageError

URL_ENV: Final = "SCANGATE_URL"
DEFAULT_TIMEOUT_SECONDS: Final = 60.0  # a grant creation makes several cluster calls
RETRY_ATTEMPTS: Final = 4
MAX_RETRY_WAIT_SECONDS: Final = 10.0
_RETRYABLE_STATUSES: Final = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Connection:
    url: str
    credential: Credential
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    ca_file: str | None = None


def connection_from(
    *,
    url: str | None,
    token_file: str | None,
    token_command: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ca_file: str | None = None,
) -> Connection:
    """The service and credential to use, from flags first, then the environment."""
    url = url or os.environ.get(URL_ENV)
    if not url:
        raise UsageError(f"no scangate URL: set {URL_ENV} or pass --url")
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"{URL_ENV} must be an http(s) URL such as https://scangate.example.com")
    credential = credential_from(token_file=token_file, token_command=token_command)
    return Connection(url.rstrip("/"), credential, timeout=timeout, ca_file=ca_file)


def _user_agent() -> str:
    try:
        return f"scangate-cli/{metadata.version('scangate')}"
    except metadata.PackageNotFoundError:
        return "scangate-cli"


class ScangateClient:
    """One HTTP connection pool to the service; use as a context manager."""

    def __init__(self, connection: Connection) -> None:
        # httpx logs every request at INFO; the CLI's stderr is for the user.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._credential = connection.credential
        self._http = httpx.Client(
            base_url=connection.url,
            headers={
                "User-Agent": _user_agent(),
                "Accept": "application/json, application/problem+json",
            },
            timeout=httpx.Timeout(connection.timeout, connect=min(10.0, connection.timeout)),
            verify=connection.ca_file or True,
        )
        self.url = connection.url

    def __enter__(self) -> ScangateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the API --------------------------------------------------------------------------------

    def create_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._request("POST", "/v1/grants", json=body, retry=False))

    def get_grant(self, grant_id: str) -> dict[str, Any]:
        return self.poll_grant(grant_id)[0]

    def poll_grant(self, grant_id: str) -> tuple[dict[str, Any], float | None]:
        """The grant, and the seconds the service asked to wait before asking again (its
        Retry-After header), if it said."""
        response = self._request("GET", f"/v1/grants/{_segment(grant_id)}")
        return self._json(response), _retry_after(response)

    def approve_grant(self, grant_id: str, reason: str | None = None) -> dict[str, Any]:
        """Approve a grant waiting for approval: the grant afterwards (still pending_approval
        while more approvals are needed; active, or failed/rejected, after the last one)."""
        body = {"reason": reason} if reason else {}
        path = f"/v1/grants/{_segment(grant_id)}/approve"
        return self._json(self._request("POST", path, json=body, retry=False))

    def deny_grant(self, grant_id: str, reason: str) -> dict[str, Any]:
        path = f"/v1/grants/{_segment(grant_id)}/deny"
        return self._json(self._request("POST", path, json={"reason": reason}, retry=False))

    def grant_events(self, grant_id: str) -> dict[str, Any]:
        return self._json(self._request("GET", f"/v1/grants/{_segment(grant_id)}/events"))

    def list_grants(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json(self._request("GET", "/v1/grants", params=params))

    def kubeconfig(self, grant_id: str, *, as_json: bool = False) -> str:
        """The kubeconfig text (YAML, or JSON). Each call mints a new token; not retried, so a
        failure never leaves the caller wondering which token is current."""
        path = f"/v1/grants/{_segment(grant_id)}/kubeconfig"
        params = {"format": "json"} if as_json else None
        return self._request("GET", path, params=params, retry=False).text

    def renew_grant(self, grant_id: str, ttl_seconds: int) -> dict[str, Any]:
        """Extend the grant to now + ttl_seconds (within its policy's lifetime cap). Retried
        like a read: asking twice only moves the expiry to the same place again."""
        path = f"/v1/grants/{_segment(grant_id)}/renew"
        return self._json(self._request("POST", path, json={"ttl_seconds": ttl_seconds}))

    def revoke_grant(self, grant_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else {}
        path = f"/v1/grants/{_segment(grant_id)}/revoke"
        return self._json(self._request("POST", path, json=body))

    def whoami(self) -> dict[str, Any]:
        return self._json(self._request("GET", "/v1/whoami"))

    # -- transport ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        attempts = RETRY_ATTEMPTS if retry else 1
        refreshed = False
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(method, path, **kwargs)
                if response.status_code == 401 and not refreshed and self._credential.refresh():
                    # A short-lived CI token expired mid-job: one more try with a fresh one.
                    # (Safe for POST /v1/grants too: a 401 means nothing was done.)
                    refreshed = True
                    response = self._send(method, path, **kwargs)
            except httpx.TimeoutException:
                failure: Exception = Unreachable(f"scangate at {self.url} did not answer in time")
            except httpx.TransportError as exc:
                failure = Unreachable(f"cannot reach scangate at {self.url}: {_reason(exc)}")
            else:
                if response.is_success:
                    return response
                failure = _api_error(response)
                if response.status_code not in _RETRYABLE_STATUSES:
                    raise failure
            if attempt == attempts:
                raise failure
            wait = getattr(failure, "retry_after", None) or 0.5 * 2 ** (attempt - 1)
            time.sleep(min(wait, MAX_RETRY_WAIT_SECONDS))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._credential.token()}"}
        return self._http.request(method, path, headers=headers, **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ApiError(response.status_code, {"title": "Not JSON"}) from None
        if not isinstance(body, dict):
            raise ApiError(response.status_code, {"title": "Unexpected response"})
        return body


def _segment(grant_id: str) -> str:
    # Grant ids are [0-9a-z]; anything else cannot be a grant and must not reshape the path.
    if not grant_id.isalnum():
        raise UsageError(f"{grant_id!r} is not a grant id")
    return grant_id


def _reason(exc: httpx.TransportError) -> str:
    # The exception text can be long (SSL internals); the class says enough, plus the cause
    # of a connection failure when it is short.
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and len(text) < 200 else type(exc).__name__


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # Not a problem document (a proxy's HTML page...): show the start of it, on one line.
        snippet = " ".join(response.text.split())[:200]
        body = {"title": response.reason_phrase or "Error", "detail": snippet or None}
    return ApiError(response.status_code, body, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    # Only the delay-seconds form: scangate sends no HTTP-dates, and a proxy's date would be
    # read against a clock that may not be ours.
    retry_after = response.headers.get("retry-after")
    return float(retry_after) if retry_after and retry_after.isdigit() else None

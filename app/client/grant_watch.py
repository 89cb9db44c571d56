"""`scangate run`'s view of the grant's end: when the grant stops being usable, the command must
stop too, or a scan runs on while its access is gone (half its checks failing as "forbidden")
or, worse, is taken for complete.

A background thread keeps two facts current:
- the deadline: the grant's `expires_at`, moved later by `--renew` (POST .../renew at 2/3 of the
  time left, for the TTL first asked, until the policy's lifetime cap refuses more);
- whether the grant is still `active`, polled with GET /v1/grants/{id} every `--poll-seconds`,
  so a revocation by someone else (an admin, `scangate grant revoke`) is noticed.
The deadline is checked locally on every tick of the supervising loop, so a scangate that stops
answering cannot stretch the command past the grant's known end.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any, Final

from app.client.api import ScangateClient
from app.client.commands import note
from app.client.errors import ApiError, ClientError

# Renew once this fraction of the time left has passed: early enough that a slow or briefly
# unreachable scangate still leaves time for another try before the grant ends.
RENEW_AT_FRACTION: Final = 2 / 3


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class GrantWatch:
    """Watches one grant while the command runs; `ended()` says why it is over, or None."""

    def __init__(
        self,
        client: ScangateClient,
        grant: dict[str, Any],
        *,
        renew_ttl_seconds: int | None,
        poll_seconds: float,
    ) -> None:
        self._client = client
        self._grant_id = str(grant["id"])
        self._renew_ttl = renew_ttl_seconds
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended: str | None = None
        self._expires_at = _parse_time(grant["expires_at"])
        self._deadline = self._monotonic_deadline(self._expires_at)
        self._renew_at = self._next_renewal()
        self._thread = threading.Thread(target=self._run, name="scangate-grant-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more polling or renewing (the run is ending for another reason)."""
        self._stop.set()

    def ended(self) -> str | None:
        with self._lock:
            if self._ended is None and time.monotonic() >= self._deadline:
                hint = "" if self._renew_ttl is not None else " (--renew extends it while it runs)"
                self._ended = (
                    f"grant {self._grant_id} expired at {_rfc3339(self._expires_at)}{hint}"
                )
            return self._ended

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        next_poll = time.monotonic() + self._poll_seconds
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                renew_at = self._renew_at
            wake = min(next_poll, renew_at if renew_at is not None else next_poll)
            if self._stop.wait(max(0.0, wake - now)):
                return
            now = time.monotonic()
            if renew_at is not None and now >= renew_at:
                self._renew()
            if time.monotonic() >= next_poll:
                self._poll()
                next_poll = time.monotonic() + self._poll_seconds
            with self._lock:
                if self._ended is not None:
                    return

    def _poll(self) -> None:
        try:
            grant = self._client.get_grant(self._grant_id)
        except ClientError as exc:
            # Not knowing is not an end: the local deadline still holds; try again next time.
            note(f"warning: could not check grant {self._grant_id}: {exc}")
            return
        status = grant.get("status")
        with self._lock:
            if status != "active":
                self._ended = f"grant {self._grant_id} is {status}"
            elif grant.get("expires_at"):
                # Someone else may have renewed it (scangate grant renew is not the only way).
                self._moved_to(_parse_time(grant["expires_at"]))

    def _renew(self) -> None:
        assert self._renew_ttl is not None
        try:
            grant = self._client.renew_grant(self._grant_id, self._renew_ttl)
        except ApiError as exc:
            if exc.status == 409 and exc.problem.get("grant_status"):
                with self._lock:
                    self._ended = f"grant {self._grant_id} is {exc.problem['grant_status']}"
                return
            # The lifetime cap (409), a policy that no longer allows it (403): no more renewals.
            with self._lock:
                self._renew_at = None
                until = _rfc3339(self._expires_at)
            note(f"grant {self._grant_id} cannot be renewed ({exc}); it ends at {until}")
            return
        except ClientError as exc:
            with self._lock:
                # Unreachable: try again a poll interval later, while there is time left.
                self._renew_at = time.monotonic() + self._poll_seconds
            note(f"warning: could not renew grant {self._grant_id}: {exc}")
            return
        with self._lock:
            previous = self._expires_at
            self._moved_to(_parse_time(grant["expires_at"]))
            if self._expires_at <= previous:
                # Capped: the server kept the expiry where it was.
                self._renew_at = None
                note(
                    f"grant {self._grant_id} reached its policy's lifetime cap; it ends at "
                    f"{_rfc3339(self._expires_at)}"
                )
            else:
                self._renew_at = self._next_renewal()
                note(f"grant {self._grant_id} renewed until {_rfc3339(self._expires_at)}")

    # -- with the lock held -------------------------------------------------------------------

    def _moved_to(self, expires_at: datetime) -> None:
        if expires_at != self._expires_at:
            self._expires_at = expires_at
            self._deadline = self._monotonic_deadline(expires_at)

    def _next_renewal(self) -> float | None:
        if self._renew_ttl is None:
            return None
        now = time.monotonic()
        return now + max(0.0, self._deadline - now) * RENEW_AT_FRACTION

    @staticmethod
    def _monotonic_deadline(expires_at: datetime) -> float:
        # The wall clock only converts the server's expiry into time left, once; the waiting
        # itself is on the monotonic clock, which no NTP step moves.
        return time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds()


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

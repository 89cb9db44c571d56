"""The notification targets in force: a small holder that the audit-event writers (which
targets want an event) and the delivery worker (where and how to send it) read, and that a
configuration reload swaps with `replace(targets)`.

A swap is one assignment of an immutable snapshot, so a reader sees the old set or the new one,
never half of each. Rows already in the outbox for a target that a reload removed stay there
until the target comes back or their give-up time passes (`worker.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.notifications.events import notification_event
from app.settings_notifications import NotificationConfig


@dataclass(frozen=True)
class Target:
    """One configured receiver, its secret already read."""

    name: str
    url: str = field(repr=False)
    secret: bytes | None = field(repr=False)
    events: frozenset[str]
    format: Literal["cloudevents", "slack"]
    source: str
    timeout_seconds: float
    retry_max_seconds: int
    give_up_after_seconds: int

    @classmethod
    def from_config(cls, config: NotificationConfig) -> Target:
        return cls(
            name=config.name, url=config.url, secret=config.secret_value(),
            events=frozenset(config.events), format=config.format, source=config.source,
            timeout_seconds=config.timeout_seconds, retry_max_seconds=config.retry_max_seconds,
            give_up_after_seconds=config.give_up_after_seconds,
        )  # fmt: skip


@dataclass(frozen=True)
class _Snapshot:
    by_name: Mapping[str, Target]
    # notification event -> the names of the targets that want it
    routes: Mapping[str, tuple[str, ...]]


def _snapshot(targets: Iterable[Target]) -> _Snapshot:
    by_name = {t.name: t for t in targets}
    routes: dict[str, list[str]] = {}
    for target in by_name.values():
        for event in target.events:
            routes.setdefault(event, []).append(target.name)
    return _Snapshot(by_name, {event: tuple(names) for event, names in routes.items()})


class NotificationTargets:
    """The targets in force (one per app, built by `open_services`)."""

    def __init__(self, targets: Iterable[Target] = ()) -> None:
        self._snapshot = _snapshot(targets)
        self._subscribers: dict[asyncio.Event, bool] = {}

    @classmethod
    def from_settings(cls, configs: Iterable[NotificationConfig]) -> NotificationTargets:
        return cls(Target.from_config(c) for c in configs)

    def replace(self, targets: Iterable[Target]) -> None:
        """Put `targets` in force at once (a configuration reload)."""
        self._snapshot = _snapshot(targets)
        self.wake(changed=True)

    def replace_from_settings(self, configs: Iterable[NotificationConfig]) -> None:
        self.replace(Target.from_config(c) for c in configs)

    @property
    def configured(self) -> bool:
        return bool(self._snapshot.by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._snapshot.by_name)

    @property
    def longest_timeout_seconds(self) -> float:
        return max((t.timeout_seconds for t in self._snapshot.by_name.values()), default=0.0)

    def get(self, name: str) -> Target | None:
        return self._snapshot.by_name.get(name)

    def route(self, audit_type: str, detail: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The notification event an audit event is and the targets that want it (none: `()`).
        Cheap when nothing is configured: the request path calls it for every event."""
        routes = self._snapshot.routes
        if not routes:
            return "", ()
        event = notification_event(audit_type, detail)
        if event is None:
            return "", ()
        return event, routes.get(event, ())

    # The worker's tasks sleep between passes on events they subscribed; new outbox rows
    # (`wake`) and a reload (`replace`) set them.

    def subscribe(self, *, rows: bool = True) -> asyncio.Event:
        """An event set on every reload and, with `rows`, whenever outbox rows commit here."""
        event = asyncio.Event()
        self._subscribers[event] = rows
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._subscribers.pop(event, None)

    def wake(self, *, changed: bool = False) -> None:
        for event, rows in list(self._subscribers.items()):
            if rows or changed:
                event.set()

"""The configuration in force: one `ConfigGeneration` (settings, policies, authenticator) that a
reload replaces whole, and the pinning that keeps one request on one generation.

A reload builds the next generation completely and then swaps a single reference
(`LiveConfig.swap`), so no reader can ever see new API keys with old policies. A request reads
the configuration several times (authentication, then the policy decision, then the policy's
limits); `PinConfigMiddleware` pins the generation in force when the request arrives in a
ContextVar, and `LiveConfig.current()` answers with the pinned one, so a request that straddles
a reload finishes entirely under the configuration it started with. Code outside a request (the
reaper, the reload itself) is not pinned and reads the newest generation at each call.

A task created while a request runs inherits its context and so its pin: a long-lived task
started lazily by a request must not read the configuration (the grant writer's flusher only
writes rows).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from app.auth.authenticator import Authenticator
    from app.auth.policies import PolicyEngine
    from app.settings import Settings


@dataclass(frozen=True)
class ConfigGeneration:
    """One complete, validated configuration and what was built from it."""

    # 1 at start-up, one more for each reload that was applied.
    number: int
    settings: Settings
    policies: PolicyEngine
    authenticator: Authenticator


def build_generation(
    settings: Settings, previous: ConfigGeneration | None = None
) -> ConfigGeneration:
    """Everything a generation holds, built from `settings`: the first one at start-up, the
    successor of `previous` on a reload (OIDC issuers' cached keys carry over)."""
    from app.auth import PolicyEngine, build_authenticator

    return ConfigGeneration(
        number=previous.number + 1 if previous is not None else 1,
        settings=settings,
        policies=PolicyEngine(settings),
        authenticator=build_authenticator(
            settings, previous.authenticator if previous is not None else None
        ),
    )


# Which `LiveConfig` pinned which generation: keyed by the holder, so several apps in one
# process (the two-replica tests) never read each other's pins.
_pinned: ContextVar[dict[int, ConfigGeneration] | None] = ContextVar(
    "scangate_pinned_config", default=None
)

ConfigSubscriber = Callable[["Settings"], None]


class LiveConfig:
    """The current generation, and the callbacks told about each new one."""

    def __init__(self, initial: ConfigGeneration) -> None:
        self._current = initial
        self._subscribers: list[ConfigSubscriber] = []

    def current(self) -> ConfigGeneration:
        """The generation pinned for this request, or else the newest one."""
        pinned = _pinned.get()
        if pinned is not None:
            generation = pinned.get(id(self))
            if generation is not None:
                return generation
        return self._current

    def newest(self) -> ConfigGeneration:
        """The newest generation, whatever this context pinned."""
        return self._current

    @property
    def settings(self) -> Settings:
        """`current().settings`: the settings in force for this request (or the newest)."""
        return self.current().settings

    @property
    def policies(self) -> PolicyEngine:
        """`current().policies`: the policy engine in force for this request (or the newest)."""
        return self.current().policies

    def subscribe(self, callback: ConfigSubscriber) -> None:
        """Call `callback(settings)` after each applied reload (notification targets, say).

        Called in the event loop right after the swap; it must not block, and an exception it
        raises is logged by the reloader without undoing the swap."""
        self._subscribers.append(callback)

    @property
    def subscribers(self) -> tuple[ConfigSubscriber, ...]:
        return tuple(self._subscribers)

    def swap(self, generation: ConfigGeneration) -> ConfigGeneration:
        """Put `generation` in force (one reference assignment); the previous one."""
        previous, self._current = self._current, generation
        return previous

    def pin(self) -> Callable[[], None]:
        """Pin the newest generation for the current context; returns the unpin."""
        pinned = dict(_pinned.get() or {})
        pinned[id(self)] = self._current
        token = _pinned.set(pinned)
        return lambda: _pinned.reset(token)


class PinConfigMiddleware:
    """Pins `config`'s generation for each HTTP request (pure ASGI: the endpoint runs in this
    context, which `BaseHTTPMiddleware` would not guarantee)."""

    def __init__(self, app: ASGIApp, config: LiveConfig) -> None:
        self.app = app
        self._config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        unpin = self._config.pin()
        try:
            await self.app(scope, receive, send)
        finally:
            unpin()

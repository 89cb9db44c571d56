"""`ConfigReloader`: load, validate, build, swap, the one path by which a running service takes
a new configuration (SIGHUP, a changed file: app/serving.py, `watch.py`).

1. Load the file with `load_settings`, the start-up loader, so a file that would not start the
   service is never put in force, with the same messages naming the bad keys.
2. Compare it with the configuration in force (`changes.py`): reloadable sections are taken,
   settings that need a restart keep their running value and are reported.
3. Check the combination as a whole (`revalidated_settings`: a new policy must name a running
   cluster) and build the next generation (policies, authenticator) completely.
4. Swap it in with one assignment (`LiveConfig.swap`); requests in flight finish on the
   generation they pinned. Then tell the subscribers.

A file that fails any step is refused: the configuration in force stays, and the problems are
logged (keys and messages, as at start-up; never a submitted value that may be secret).

Each reload that changes something, or is refused, is an audit record on the `scangate.audit`
logger with type `config_reloaded` or `config_reload_refused` and actor `system`. It is not a
row of `grant_events` (`/v1/events`): that table's events belong to a grant, and a reload has
none. The outcome of the last reload is in `last` (shown by `/healthz`) and in metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.observability.audit import audit_log
from app.reload.changes import ConfigChanges, compare, merged
from app.reload.live import ConfigGeneration, LiveConfig, build_generation
from app.rfc3339 import format_rfc3339
from app.settings import ConfigError, Settings, revalidated_settings

log = logging.getLogger(__name__)

ACTOR: Final = "system"
Outcome = Literal["applied", "unchanged", "refused"]


@dataclass(frozen=True)
class ReloadReport:
    """What one reload did (`/healthz` shows the last one)."""

    outcome: Outcome
    trigger: str
    at: datetime
    # The generation in force afterwards.
    generation: int
    changes: ConfigChanges = field(default_factory=ConfigChanges)
    # (key, message) as `ConfigError` has them; empty unless refused.
    problems: tuple[tuple[str, str], ...] = ()

    def as_status(self) -> dict[str, Any]:
        """For `/healthz`, which anyone may call: keys only, no messages."""
        return {
            "outcome": self.outcome,
            "trigger": self.trigger,
            "at": format_rfc3339(self.at),
            "generation": self.generation,
            "changed": sorted(self.changes.sections),
            "restart_required": list(self.changes.restart_required),
            "problems": [key or "(file)" for key, _ in self.problems],
        }


def content_hash(path: Path) -> str | None:
    """The sha256 of the file's content; None while it cannot be read (absent, say)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ReloadMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.reloads = Counter(
            "scangate_config_reloads",
            "Configuration reloads by outcome (applied, unchanged, refused)",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("applied", "unchanged", "refused"):
            self.reloads.labels(outcome)
        self.last_success = Gauge(
            "scangate_config_last_reload_success",
            "1 if the last reload was applied or changed nothing, 0 if it was refused "
            "(1 before any reload)",
            registry=registry,
        )
        self.last_success.set(1)
        self.generation = Gauge(
            "scangate_config_generation",
            "The configuration generation in force (1 at start, +1 per applied reload)",
            registry=registry,
        )
        self.generation.set(1)


class ConfigReloader:
    """Reloads `live` from `load()` (`load_settings` of the file the service started with)."""

    def __init__(
        self,
        live: LiveConfig,
        load: Callable[[], Settings],
        *,
        path: Path | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.live = live
        self._load = load
        self._path = path
        # The content hash of `path` when it was last read: at start (now, just after the
        # service loaded it) and by each reload, applied or refused. The file watcher reloads
        # when the file differs from it, so neither a SIGHUP'd change nor a refused file is
        # reloaded again by the next poll.
        self.file_hash = content_hash(path) if path is not None else None
        self._lock = asyncio.Lock()
        self._metrics = ReloadMetrics(registry)
        self._tasks: set[asyncio.Task[ReloadReport]] = set()
        self.last: ReloadReport | None = None

    def request_reload(self, trigger: str) -> None:
        """Start a reload in the background (from a signal handler: nothing may wait there)."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger), name="scangate-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self, trigger: str) -> ReloadReport:
        """Load, validate, build and swap; never raises (a failed reload is reported)."""
        # One at a time: two reloads racing could put the older file in force last.
        async with self._lock:
            running = self.live.newest()
            if self._path is not None:
                self.file_hash = await asyncio.to_thread(content_hash, self._path)
            try:
                # File reading and policy compilation stay off the event loop.
                changes, generation = await asyncio.to_thread(self._prepare, running)
            except ConfigError as error:
                report = self._refused(trigger, running, error.problems, error.source)
            except Exception:
                # A bug while building must not take the serving process down with it.
                log.exception("configuration reload (%s) failed unexpectedly", trigger)
                report = self._refused(trigger, running, [("", "internal error (see log)")], None)
            else:
                report = self._apply(trigger, running, changes, generation)
            self.last = report
            self._metrics.reloads.labels(report.outcome).inc()
            self._metrics.last_success.set(0 if report.outcome == "refused" else 1)
            self._metrics.generation.set(report.generation)
            return report

    def _prepare(self, running: ConfigGeneration) -> tuple[ConfigChanges, ConfigGeneration | None]:
        new = self._load()
        changes = compare(running.settings, new)
        if not changes.sections:
            return changes, None
        settings = revalidated_settings(merged(running.settings, new))
        return changes, build_generation(settings, running)

    def _apply(
        self,
        trigger: str,
        running: ConfigGeneration,
        changes: ConfigChanges,
        generation: ConfigGeneration | None,
    ) -> ReloadReport:
        if changes.restart_required:
            log.warning(
                "configuration reload (%s): %s changed in the file but take effect only after "
                "a restart; the running values stay in force",
                trigger, ", ".join(changes.restart_required),
            )  # fmt: skip
        if generation is None:
            # Nothing that a reload applies changed: no new generation, nothing to audit.
            log.info("configuration reload (%s): nothing reloadable changed", trigger)
            return ReloadReport("unchanged", trigger, datetime.now(UTC), running.number, changes)
        self.live.swap(generation)
        self._notify(generation.settings)
        log.info(
            "configuration reload (%s) applied: generation %d, changed: %s",
            trigger, generation.number, changes.summary(),
        )  # fmt: skip
        report = ReloadReport("applied", trigger, datetime.now(UTC), generation.number, changes)
        detail = {**changes.as_detail(), "from_generation": running.number}
        _audit("config_reloaded", report, detail)
        return report

    def _notify(self, settings: Settings) -> None:
        for subscriber in self.live.subscribers:
            try:
                subscriber(settings)
            except Exception:
                # The swap stands: the other subscribers and requests already use it.
                log.exception("a configuration subscriber failed on the new configuration")

    def _refused(
        self,
        trigger: str,
        running: ConfigGeneration,
        problems: list[tuple[str, str]],
        source: str | None,
    ) -> ReloadReport:
        lines = "; ".join(f"{key}: {message}" if key else message for key, message in problems)
        where = f" ({source})" if source else ""
        log.error(
            "configuration reload (%s) refused, generation %d stays in force: invalid "
            "configuration%s: %s",
            trigger, running.number, where, lines,
        )  # fmt: skip
        report = ReloadReport(
            "refused", trigger, datetime.now(UTC), running.number, problems=tuple(problems)
        )
        _audit(
            "config_reload_refused",
            report,
            {"problems": [{"key": key, "message": message} for key, message in problems]},
        )
        return report


def _audit(type_: str, report: ReloadReport, detail: dict[str, Any]) -> None:
    fields = {
        "type": type_,
        "actor": ACTOR,
        "at": format_rfc3339(report.at),
        "detail": {"trigger": report.trigger, "generation": report.generation, **detail},
    }
    audit_log.info("configuration %s by %s", type_, ACTOR, extra={"audit": fields})

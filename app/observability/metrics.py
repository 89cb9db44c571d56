"""The service's Prometheus metrics, one `ScangateMetrics` (and one registry) per app.

Several apps live in one process in tests (two replicas on one database, apps built per test),
so nothing registers into prometheus_client's global default registry.

Label values are bounded on purpose, because every distinct value is a new time series kept
forever: clusters and scanner profiles come from configuration, routes are templates
(`/v1/grants/{grant_id}`, never raw paths, which would also carry whatever a caller typed) and
unknown HTTP methods collapse into `OTHER`.

Counters are per process, as Prometheus expects (sum them across replicas). The active-grants
gauge is different: it is read from the database at scrape time, because a grant created by one
replica is often ended by another's reaper, so no single process could keep it right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

SCANNER_LABEL_VALUES: Final = ("exec", "debug", "sidecar")
UNMATCHED_ROUTE: Final = "unmatched"
_HTTP_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# Requests span a health check (sub-millisecond) to a grant creation (several cluster calls).
_HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Per attempt; the read timeout (15 s) bounds the top.
_KUBE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
_REAPER_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The design promises revocation lag well under a second; the upper buckets show an outage.
_LAG_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class ScangateMetrics:
    """Every instrument of one app, registered in its own `CollectorRegistry`."""

    def __init__(self, clusters: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        grant_labels = ("cluster", "scanner")
        self.grants_created = Counter(
            "scangate_grants_created_total",
            "Grants that became active.",
            grant_labels,
            registry=registry,
        )
        self.grants_revoked = Counter(
            "scangate_grants_revoked_total",
            "Grants revoked on request (their objects deleted).",
            grant_labels,
            registry=registry,
        )
        self.grants_expired = Counter(
            "scangate_grants_expired_total",
            "Grants ended by the reaper at their expiry.",
            grant_labels,
            registry=registry,
        )
        self.grants_failed = Counter(
            "scangate_grants_failed_total",
            "Grants whose provisioning failed or was abandoned.",
            grant_labels,
            registry=registry,
        )
        self.grants_active = Gauge(
            "scangate_grants_active",
            "Grants currently active, read from the database at scrape time "
            "(the same value on every replica).",
            grant_labels,
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "scangate_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ("method", "route", "status"),
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.kube_request_duration = Histogram(
            "scangate_kube_request_duration_seconds",
            "Kubernetes API call latency, one observation per attempt (retries included).",
            ("cluster", "verb", "resource"),
            buckets=_KUBE_BUCKETS,
            registry=registry,
        )
        self.kube_request_errors = Counter(
            "scangate_kube_request_errors_total",
            "Kubernetes API attempts that failed, by kind of failure "
            "(not_found on a delete is how an already-gone object looks).",
            ("cluster", "verb", "resource", "error"),
            registry=registry,
        )
        self.reaper_pass_duration = Histogram(
            "scangate_reaper_pass_duration_seconds",
            "Duration of one reaper pass.",
            buckets=_REAPER_BUCKETS,
            registry=registry,
        )
        self.reaper_pass_errors = Counter(
            "scangate_reaper_pass_errors_total",
            "Reaper jobs that failed within a pass (the pass goes on with the others).",
            registry=registry,
        )
        self.revocation_lag = Histogram(
            "scangate_revocation_lag_seconds",
            "From a grant's expiry to the deletion of its ServiceAccount (which ends every "
            "token of the grant).",
            ("cluster",),
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.orphans_swept = Counter(
            "scangate_orphans_swept_total",
            "Labelled objects deleted by the sweep because their grant was not live.",
            ("cluster",),
            registry=registry,
        )
        # Notifications (app/notifications); `target` is a configured target's name.
        self.notification_deliveries = Counter(
            "scangate_notification_deliveries_total",
            "Notification delivery attempts by target and outcome (delivered, failed).",
            ("target", "outcome"),
            registry=registry,
        )
        self.notifications_given_up = Counter(
            "scangate_notifications_given_up_total",
            "Notifications dropped undelivered once the target's give_up_after_seconds passed.",
            ("target",),
            registry=registry,
        )
        self.notification_backlog = Gauge(
            "scangate_notification_backlog",
            "Notifications waiting in the outbox by target (the whole database's, as the "
            "delivery worker last counted them).",
            ("target",),
            registry=registry,
        )
        self._clusters = tuple(clusters)
        self._prepopulate()

    def _prepopulate(self) -> None:
        # Series that exist from the start with 0, so `rate()` and alerts on absence work
        # before the first grant of a kind is ever made.
        for cluster in self._clusters:
            for scanner in SCANNER_LABEL_VALUES:
                for counter in (
                    self.grants_created,
                    self.grants_revoked,
                    self.grants_expired,
                    self.grants_failed,
                ):
                    counter.labels(cluster, scanner)
                self.grants_active.labels(cluster, scanner).set(0)
            self.orphans_swept.labels(cluster)

    # -- grants -------------------------------------------------------------------------------

    def grant_created(self, cluster: str, scanner: str) -> None:
        self.grants_created.labels(cluster, scanner).inc()

    def grant_failed(self, cluster: str, scanner: str) -> None:
        self.grants_failed.labels(cluster, scanner).inc()

    def grant_ended(self, cluster: str, scanner: str, status: str) -> None:
        """A grant reached `revoked` or `expired`."""
        counter = self.grants_expired if status == "expired" else self.grants_revoked
        counter.labels(cluster, scanner).inc()

    def revocation_lag_observed(self, cluster: str, seconds: float) -> None:
        # A grant revoked ahead of its expiry has no lag; clock skew between replicas must not
        # produce negative observations either.
        self.revocation_lag.labels(cluster).observe(max(0.0, seconds))

    def set_active_grants(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace the gauge with `{(cluster, scanner): count}`; configured pairs absent from
        `counts` read 0 (no grant), other pairs disappear (a cluster removed from config)."""
        self.grants_active.clear()
        for cluster in self._clusters:
            for scanner in SCANNER_LABEL_VALUES:
                self.grants_active.labels(cluster, scanner).set(0)
        for (cluster, scanner), count in counts.items():
            self.grants_active.labels(cluster, scanner).set(count)

    # -- reaper -------------------------------------------------------------------------------

    def reaper_pass_finished(self, seconds: float, errors: int) -> None:
        self.reaper_pass_duration.observe(seconds)
        if errors:
            self.reaper_pass_errors.inc(errors)

    def orphans_swept_in(self, cluster: str, count: int) -> None:
        self.orphans_swept.labels(cluster).inc(count)

    # -- notifications ------------------------------------------------------------------------

    def notification_attempted(self, target: str, *, delivered: bool) -> None:
        outcome = "delivered" if delivered else "failed"
        self.notification_deliveries.labels(target, outcome).inc()

    def notification_given_up(self, target: str) -> None:
        self.notifications_given_up.labels(target).inc()

    def set_notification_backlog(self, targets: Iterable[str], counts: Mapping[str, int]) -> None:
        """Configured targets absent from `counts` read 0."""
        self.notification_backlog.clear()
        for target in targets:
            self.notification_backlog.labels(target).set(0)
            # Their counters exist from the start with 0, so `rate()` and alerts work at once.
            for outcome in ("delivered", "failed"):
                self.notification_deliveries.labels(target, outcome)
            self.notifications_given_up.labels(target)
        for target, count in counts.items():
            self.notification_backlog.labels(target).set(count)

    # -- HTTP and Kubernetes calls ------------------------------------------------------------

    def http_request_finished(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _HTTP_METHODS else "OTHER"
        self.http_request_duration.labels(method, route, str(status)).observe(seconds)

    def kube_call_finished(
        self, *, cluster: str, verb: str, resource: str, seconds: float, error: str | None
    ) -> None:
        """The `app.kube` call observer: one call per attempt at a Kubernetes API request."""
        self.kube_request_duration.labels(cluster, verb, resource).observe(seconds)
        if error is not None:
            self.kube_request_errors.labels(cluster, verb, resource, error).inc()

    # -- exposition ---------------------------------------------------------------------------

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition for a scrape: OpenMetrics when the scraper asks for it (Prometheus
        does), the classic text format otherwise. Returns (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

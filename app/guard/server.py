"""The guard's listener as a uvicorn server for `scangate serve` (run beside the API by
app/serving.py).

One process rather than a second Deployment: the guard reads the same database and
configuration as the API, the chart already runs and scales the API pods, and a second process
type would need its own probes, PodDisruptionBudget and rollout. The listeners stay separate
(port, certificate, app), so the API port never needs to be reachable from the control plane.
"""

from __future__ import annotations

import uvicorn

from app.guard.app import create_guard_app
from app.reload import LiveConfig
from app.serving import SharedSignalsServer, tls_options
from app.settings import Settings
from app.tls_files import ReloadingCertificate

__all__ = ["SharedSignalsServer", "guard_config"]


def guard_config(
    settings: Settings, *, log_level: str, live: LiveConfig | None = None
) -> tuple[uvicorn.Config, ReloadingCertificate]:
    guard = settings.guard
    # Both are required when the guard is enabled (GuardConfig).
    assert guard.cert_file is not None
    assert guard.key_file is not None
    certificate = ReloadingCertificate(guard.cert_file, guard.key_file)
    config = uvicorn.Config(
        create_guard_app(settings, live),
        host=guard.host,
        port=guard.port,
        log_level=log_level,
        log_config=None,  # the API's server configured logging already
        access_log=False,
        timeout_keep_alive=65,
        # Called by the API server directly: no proxy may rewrite who the caller is.
        proxy_headers=False,
        # kube-apiserver keeps connections open; on SIGTERM, requests in flight finish, then
        # the rest are closed well inside the pod's termination grace period.
        timeout_graceful_shutdown=20,
        **tls_options(certificate),  # type: ignore[arg-type]
    )
    return config, certificate

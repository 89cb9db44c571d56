"""Builds the official client for one configured cluster: kubeconfig file + context, or the
in-cluster service account when no kubeconfig is configured."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from app.kube.errors import KubeError
from app.kube.wire import check_proxy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    kubeconfig: str | None
    context: str | None
    server: str | None
    grants_namespace: str


@dataclass(frozen=True)
class Connection:
    api_client: client.ApiClient
    server: str  # public URL written into issued kubeconfigs
    certificate_authority_data: str | None  # base64 PEM


def connect(settings: ClusterSettings) -> Connection:
    """Load the cluster's credentials into a fresh Configuration (never the global default,
    so several clusters coexist) and build its ApiClient (whose requests go out through
    `wire.py`, not through the client's own HTTP pool)."""
    configuration = client.Configuration()
    try:
        if settings.kubeconfig is None:
            # Also installs a hook that re-reads the projected token, which the kubelet rotates.
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError, ValueError) as exc:
        source = settings.kubeconfig or "in-cluster service account"
        raise KubeError(
            f'cluster "{settings.name}": cannot load credentials from {source}: '
            f"{type(exc).__name__}"
        ) from None
    check_proxy(settings.name, configuration)
    server = settings.server or str(configuration.host)
    if settings.kubeconfig is None and settings.server is None:
        log.warning(
            'cluster "%s": no `server` configured; issued kubeconfigs will use the in-cluster '
            "address %s, which callers outside the cluster cannot reach",
            settings.name,
            server,
        )
    return Connection(
        api_client=client.ApiClient(configuration=configuration),
        server=server,
        certificate_authority_data=_read_ca_data(configuration.ssl_ca_cert),
    )


def _read_ca_data(path: object) -> str | None:
    # The loader writes certificate-authority-data to a temporary file and resolves a
    # certificate-authority path relative to the kubeconfig, so reading `ssl_ca_cert` covers
    # both forms and the in-cluster CA, and is exactly the CA the client itself trusts.
    if not path:
        return None
    return base64.b64encode(Path(str(path)).read_bytes()).decode("ascii")

"""Loads one configured cluster's connection settings: the kubeconfig file and context, or the
in-cluster service account when no kubeconfig is configured.

The official client's asyncio loaders (`kubernetes.aio.config`) read everything (server, CA,
client certificate, token, exec plugins, `tls-server-name`, `insecure-skip-tls-verify`,
`proxy-url`) into a fresh `Configuration` (never the global default, so several clusters
coexist), and its REST client applies them. This module only adds what scangate needs on top:
the public server URL and the CA written into issued kubeconfigs, the environment's proxy
decided once, exec-plugin token renewal, and clear start-up errors naming the cluster.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes.aio.client import Configuration
from kubernetes.aio.config import incluster_config, kube_config
from kubernetes.aio.config.config_exception import ConfigException
from yarl import URL

from app.kube.errors import KubeError

log = logging.getLogger(__name__)

# aiohttp, which sends the requests, speaks to HTTP proxies only.
_PROXY_SCHEMES: Final = frozenset({"http", "https"})


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    kubeconfig: str | None
    context: str | None
    server: str | None
    grants_namespace: str
    # The value of every object's installation label; None: the grants namespace (unique per
    # installation on one cluster).
    installation_id: str | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """A cluster's loaded connection settings."""

    configuration: Configuration
    server: str  # public URL written into issued kubeconfigs
    certificate_authority_data: str | None  # base64 PEM


async def load_cluster_config(settings: ClusterSettings) -> ClusterConfig:
    """Read the cluster's credentials (running its exec plugin, if the kubeconfig names one)."""
    configuration = Configuration()
    try:
        if settings.kubeconfig is None:
            # Also installs a hook that re-reads the projected token, which the kubelet rotates.
            incluster_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            loader = await kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
            _refresh_expiring_exec_tokens(loader, configuration)
    except (ConfigException, OSError, ValueError, KeyError, AssertionError, yaml.YAMLError) as exc:
        source = settings.kubeconfig or "in-cluster service account"
        raise KubeError(
            f'cluster "{settings.name}": cannot load credentials from {source}: '
            f"{type(exc).__name__}"
        ) from None
    if not configuration.proxy:
        _use_environment_proxy(configuration)
    proxy = configuration.proxy
    if proxy and urlsplit(str(proxy)).scheme.lower() not in _PROXY_SCHEMES:
        raise KubeError(
            f'cluster "{settings.name}": SOCKS proxies are not supported (proxy-url); '
            "use an HTTP proxy"
        )
    server = settings.server or str(configuration.host)
    if settings.kubeconfig is None and settings.server is None:
        log.warning(
            'cluster "%s": no `server` configured; issued kubeconfigs will use the in-cluster '
            "address %s, which callers outside the cluster cannot reach",
            settings.name,
            server,
        )
    return ClusterConfig(
        configuration=configuration,
        server=server,
        certificate_authority_data=_read_ca_data(configuration.ssl_ca_cert),
    )


def _refresh_expiring_exec_tokens(
    loader: kube_config.KubeConfigLoader, configuration: Configuration
) -> None:
    """An exec plugin's token can expire (cloud IAM tokens last minutes): before each request,
    ask the loader again, which re-runs the plugin only once the token's expiry has passed.
    The asyncio loader leaves this to a polling task of the caller's (`refresh_token`); a hook
    run per request needs no task and never sends an expired token."""
    if not hasattr(loader, "exec_plugin_expiry"):
        return
    # Requests that find the token expired together wait for one run of the plugin.
    running = asyncio.Lock()

    async def refresh(config: Any) -> None:
        async with running:
            await loader.load_from_exec_plugin()  # type: ignore[no-untyped-call]
        config.api_key["BearerToken"] = loader.token

    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]


def _use_environment_proxy(configuration: Configuration) -> None:
    """HTTPS_PROXY / HTTP_PROXY and NO_PROXY, decided once by aiohttp's own rule.

    The client leaves the environment to aiohttp (`trust_env`), which consults it and ~/.netrc
    in a worker thread on every request; scangate's session is built without `trust_env` (see
    `api_calls.open_api_client`), so the same rule is applied here, once: the environment does
    not change while the process runs.
    """
    try:
        proxy, auth = get_env_proxy_for_url(URL(str(configuration.host)))
    except LookupError:
        return  # no proxy for this server, or NO_PROXY names it
    configuration.proxy = str(proxy)
    if auth is not None:
        configuration.proxy_headers = {"Proxy-Authorization": auth.encode()}


def _read_ca_data(path: object) -> str | None:
    # The loader writes certificate-authority-data to a temporary file and resolves a
    # certificate-authority path relative to the kubeconfig, so reading `ssl_ca_cert` covers
    # both forms and the in-cluster CA, and is exactly the CA the client itself trusts.
    if not path:
        return None
    return base64.b64encode(Path(str(path)).read_bytes()).decode("ascii")

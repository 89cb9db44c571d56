"""What an `exec` or `debug` grant reaches inside a pod beyond the Kubernetes API, read from the
pod's spec: its ServiceAccount and whether that account's token is mounted, and the Secrets and
ConfigMaps the pod mounts as volumes or hands its containers through env / envFrom.

Whoever can run a process in a container can read what the kubelet put there: mounted files and
the process environment. A mounted ServiceAccount token also carries that account's API
permissions, whatever the grant's own Role says.

The spec is the truth here, not the `automountServiceAccountToken` settings: kube-apiserver's
ServiceAccount admission plugin writes the projected `kube-api-access-*` volume into the spec when
the pod is created (unless the pod or its ServiceAccount opts out), and the kubelet mounts exactly
what the spec says. The pod's own setting is reported alongside for the reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.kube.models import ExposureKind, PodExposure

# The ConfigMap the ServiceAccount admission plugin projects beside the token: the cluster's
# public CA bundle, part of the token volume rather than application configuration.
_ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


def pod_exposure(spec: Any) -> PodExposure:
    """The exposure of a pod whose `spec` is a `V1PodSpec` (or None)."""
    if spec is None:
        return PodExposure(service_account="default")
    token = False
    secret_volumes: set[str] = set()
    configmap_volumes: set[str] = set()
    for volume in spec.volumes or []:
        if volume.secret is not None and volume.secret.secret_name:
            secret_volumes.add(volume.secret.secret_name)
        if volume.config_map is not None and volume.config_map.name:
            configmap_volumes.add(volume.config_map.name)
        if volume.projected is not None:
            sources = volume.projected.sources or []
            has_token = any(s.service_account_token is not None for s in sources)
            token = token or has_token
            for source in sources:
                if source.secret is not None and source.secret.name:
                    secret_volumes.add(source.secret.name)
                if source.config_map is not None and source.config_map.name:
                    name = source.config_map.name
                    if not (has_token and name == _ROOT_CA_CONFIGMAP):
                        configmap_volumes.add(name)
    secret_env: dict[str, list[str]] = {}
    configmap_env: dict[str, list[str]] = {}
    for container in _reachable_containers(spec):
        secrets, configmaps = _env_sources(container)
        if secrets:
            secret_env[container.name] = sorted(secrets)
        if configmaps:
            configmap_env[container.name] = sorted(configmaps)
    return PodExposure(
        service_account=spec.service_account_name or spec.service_account or "default",
        automount_service_account_token=spec.automount_service_account_token,
        service_account_token=token,
        secret_volumes=tuple(sorted(secret_volumes)),
        secret_env=secret_env,
        configmap_volumes=tuple(sorted(configmap_volumes)),
        configmap_env=configmap_env,
    )


def exposed_kinds(exposure: PodExposure) -> list[ExposureKind]:
    """The `allow_pods_with` words that describe `exposure`, in vocabulary order."""
    present: dict[ExposureKind, bool] = {
        "service_account_token": exposure.service_account_token,
        "secret_volumes": bool(exposure.secret_volumes),
        "secret_env": bool(exposure.secret_env),
        "configmap_volumes": bool(exposure.configmap_volumes),
        "configmap_env": bool(exposure.configmap_env),
    }
    return [kind for kind, yes in present.items() if yes]


def _reachable_containers(spec: Any) -> Iterable[Any]:
    # Every container a process may run in while the pod lives: app containers, native
    # sidecars (init containers with restartPolicy Always) and ephemeral containers already
    # added. Ordinary init containers have finished, so nothing can exec into them.
    yield from spec.containers or []
    yield from (c for c in spec.init_containers or [] if c.restart_policy == "Always")
    yield from spec.ephemeral_containers or []


def _env_sources(container: Any) -> tuple[set[str], set[str]]:
    secrets: set[str] = set()
    configmaps: set[str] = set()
    for variable in container.env or []:
        source = variable.value_from
        if source is None:
            continue
        if source.secret_key_ref is not None and source.secret_key_ref.name:
            secrets.add(source.secret_key_ref.name)
        if source.config_map_key_ref is not None and source.config_map_key_ref.name:
            configmaps.add(source.config_map_key_ref.name)
    for env_from in container.env_from or []:
        if env_from.secret_ref is not None and env_from.secret_ref.name:
            secrets.add(env_from.secret_ref.name)
        if env_from.config_map_ref is not None and env_from.config_map_ref.name:
            configmaps.add(env_from.config_map_ref.name)
    return secrets, configmaps

"""One simulated cluster: its objects, clock, signing key, users, RBAC and faults.

`Cluster.reset()` returns it to the state it started in (built-in namespaces, bootstrap RBAC,
then the seed manifests), which is what the pytest fixture does between tests instead of
starting a new process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import yaml

from kubesim import errors
from kubesim.admission.webhooks import WebhookDispatcher
from kubesim.authn import Authenticator
from kubesim.errors import ApiError
from kubesim.faults import FaultInjector
from kubesim.rbac import Authorizer
from kubesim.rbac_bootstrap import bootstrap_objects
from kubesim.registry import NAMESPACES, Registry
from kubesim.resources import lookup_kind
from kubesim.store import Clock, Obj, Store
from kubesim.tokencache import DEFAULT_TOKEN_CACHE_TTL_SECONDS, TokenAuthenticationCache
from kubesim.tokens import DEFAULT_ISSUER, TokenSigner
from kubesim.versions import DEFAULT_KUBE_VERSION, KubeVersion

BUILTIN_NAMESPACES: Final = ("default", "kube-node-lease", "kube-public", "kube-system")


class SeedError(ValueError):
    """A seed manifest that cannot be loaded; the message names the document."""


@dataclass(frozen=True)
class SimConfig:
    admin_tokens: tuple[str, ...]
    seed_yaml: str = ""
    # --service-account-max-token-expiration: longer TokenRequests are shortened to this.
    token_max_seconds: int | None = None
    latency_ms: float = 0.0
    fault_seed: int = 0
    issuer: str = DEFAULT_ISSUER
    # kube-apiserver's TokenSuccessCacheTTL (10 s, not a flag there); 0 turns the cache off.
    token_cache_ttl_seconds: float = DEFAULT_TOKEN_CACHE_TTL_SECONDS
    kube_version: str = DEFAULT_KUBE_VERSION
    # --service-address: where admission webhooks' clientConfig.service live ("NS/NAME",
    # "HOST:PORT"); there is no cluster network to route to a Service.
    service_addresses: tuple[tuple[str, str], ...] = ()


def parse_manifests(text: str) -> list[Obj]:
    """Multi-document YAML (or JSON) to objects; `kind: List` documents are expanded."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise SeedError(f"not valid YAML: {exc}") from exc
    objects: list[Obj] = []
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise SeedError(f"document {index + 1} is not a Kubernetes object")
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    return objects


class Cluster:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.store = Store()
        self.registry = Registry(self.store, self.clock)
        self.version = KubeVersion.parse(config.kube_version)
        self.signer = TokenSigner(self.clock, config.issuer)
        self.token_cache = TokenAuthenticationCache(self.clock, config.token_cache_ttl_seconds)
        self.authenticator = Authenticator(
            self.store, self.signer, list(config.admin_tokens), self.token_cache
        )
        self.authorizer = Authorizer(self.store)
        self.faults = FaultInjector(seed=config.fault_seed, base_latency_ms=config.latency_ms)
        self.webhooks = WebhookDispatcher(
            self.store, dict(config.service_addresses), self.authorizer.authorize
        )
        self._seed = parse_manifests(config.seed_yaml) if config.seed_yaml else []
        self.reset()

    def reset(self) -> None:
        self.store.clear()
        self.clock.offset_seconds = 0.0
        self.authenticator.clear_user_tokens()
        self.token_cache.clear()  # a fresh cluster: nothing authenticated yet
        self.faults.clear()
        # Addresses set at run time (the admin endpoint) go; the command line's stay.
        self.webhooks.service_addresses = dict(self.config.service_addresses)
        for name in BUILTIN_NAMESPACES:
            self.registry.create(NAMESPACES, "", {"metadata": {"name": name}})
        self.apply(bootstrap_objects())
        try:
            self.apply(self._seed)
        except ApiError as exc:
            raise SeedError(str(exc)) from exc

    def apply(self, objects: Iterable[Obj]) -> list[Obj]:
        """Create (or replace) objects without authorization, creating missing namespaces."""
        return [self._apply_one(obj) for obj in objects]

    def _apply_one(self, obj: Obj) -> Obj:
        rt = lookup_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt is None or rt.virtual:
            raise errors.bad_request(
                f"kubesim does not serve {obj.get('kind')} in {obj.get('apiVersion')}"
            )
        meta: dict[str, Any] = obj.setdefault("metadata", {})
        namespace = ""
        if rt.namespaced:
            namespace = meta.setdefault("namespace", "default")
            if not self.store.exists(NAMESPACES, "", namespace):
                self.registry.create(NAMESPACES, "", {"metadata": {"name": namespace}})
        try:
            created = self.registry.create(rt, namespace, obj)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
        else:
            if "status" not in obj or rt.subresource("status") is None:
                return created
            # The registry resets a new pod's status, as kube-apiserver does; the manifest's
            # status is then written as the kubelet (or a controller) would, via /status.
            return self.registry.update(rt, namespace, meta["name"], obj, subresource="status")
        if rt is NAMESPACES:
            return self.registry.get(rt, "", meta["name"])
        meta.pop("resourceVersion", None)
        updated = self.registry.update(rt, namespace, meta["name"], obj)
        if "status" in obj and rt.subresource("status") is not None:
            # A replaced manifest brings its status too (no controller would set it here).
            updated = self.registry.update(rt, namespace, meta["name"], obj, subresource="status")
        return updated

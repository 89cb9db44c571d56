"""pytest plugin: kubesim processes for tests, and a handle to drive them.

Fixtures (register with `pytest_plugins = ["kubesim.pytest_plugin"]`):

- `kubesim`: a `KubesimHandle` over HTTP. One process serves the whole session; it is reset
  to the default seed (and faults cleared) before each test, which is much cheaper than a
  process per test.
- `kubesim_tls`: the same over HTTPS with a generated CA.
- `kubesim_factory`: `factory(seed=None, tls=False, latency_ms=0, token_max_seconds=None,
  token_cache_ttl_seconds=None, kube_version=None, service_addresses=None)`
  (`service_addresses`: `{"NS/NAME": "HOST:PORT"}` for admission webhook Services) starts a
  dedicated process (stopped at teardown) for tests that need other settings.

Every process runs with kube-apiserver's defaults (the 10 s token authentication cache on) as
the release named by the environment variable `KUBESIM_KUBE_VERSION` (default: kubesim's
newest, 1.35), so a whole suite can be run against, say, 1.30:
`KUBESIM_KUBE_VERSION=1.30 pytest tests/exec`.

kubesim always runs as a separate process reached over a socket, as a real cluster would be,
and is driven through its admin endpoint, so the code under test cannot tell it apart from a
remote API server and tests in other processes can inject faults too.
"""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kubesim.cluster import parse_manifests
from kubesim.kubeconfig import token_kubeconfig, write_kubeconfig
from kubesim.process import KubesimProcess
from kubesim.seed import DEFAULT_SEED
from kubesim.tokencache import DEFAULT_TOKEN_CACHE_TTL_SECONDS
from kubesim.versions import DEFAULT_KUBE_VERSION, KubeVersion, UnsupportedKubeVersion

if TYPE_CHECKING:
    import kubernetes.client

__all__ = [
    "DEFAULT_SEED",
    "KUBE_VERSION_ENV",
    "KubesimError",
    "KubesimHandle",
    "launch_kubesim",
]

KUBE_VERSION_ENV = "KUBESIM_KUBE_VERSION"


def default_kube_version() -> str:
    """The release the fixtures' processes play: `KUBESIM_KUBE_VERSION`, else 1.35."""
    chosen = os.environ.get(KUBE_VERSION_ENV, "").strip() or DEFAULT_KUBE_VERSION
    try:
        return str(KubeVersion.parse(chosen))
    except UnsupportedKubeVersion as exc:
        raise pytest.UsageError(f"{KUBE_VERSION_ENV}: {exc}") from None


class KubesimError(RuntimeError):
    """The admin endpoint refused a request; the message is kubesim's Status message."""


@dataclass
class KubesimHandle:
    url: str
    admin_token: str
    admin_kubeconfig: Path
    ca_cert_pem: bytes | None
    process: KubesimProcess = field(repr=False, compare=False)
    kube_version: str = DEFAULT_KUBE_VERSION  # the release it plays ("1.35")
    token_cache_ttl_seconds: float = DEFAULT_TOKEN_CACHE_TTL_SECONDS

    # --- clients ---------------------------------------------------------------------------

    def admin_client(self) -> kubernetes.client.ApiClient:
        """The official client, configured from the admin kubeconfig."""
        from kubernetes import client, config

        api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.admin_kubeconfig)
        )
        return api_client

    def token_kubeconfig(
        self, token: str, path: Path, namespace: str | None = None, *, for_kubectl: bool = False
    ) -> Path:
        """Write a kubeconfig for `token` (with the CA under TLS).

        kubectl never sends a bearer token over plain HTTP (kubernetes/kubectl#744). With
        `for_kubectl=True` on an HTTP kubesim the token also rides in the server URL, which
        kubectl does send (as Basic credentials that kubesim accepts). Never hand such a file
        to code that copies the server URL elsewhere: it contains the token.
        """
        url = self.url
        if for_kubectl and url.startswith("http://"):
            url = url.replace("http://", f"http://kubesim:{token}@", 1)
        config = token_kubeconfig(
            url, token, self.ca_cert_pem, user="kubesim-user", namespace=namespace
        )
        write_kubeconfig(path, config)
        return path

    # --- cluster state ---------------------------------------------------------------------

    def apply(self, manifests: str | dict[str, Any] | list[dict[str, Any]]) -> None:
        """Create (or replace) objects as admin, creating missing namespaces. Objects keep
        the `status` they are given (there is no kubelet to set it)."""
        if isinstance(manifests, str):
            objects = parse_manifests(manifests)
        elif isinstance(manifests, dict):
            objects = [manifests]
        else:
            objects = list(manifests)
        self._admin("POST", "apply", objects)

    def add_user_token(self, token: str, user: str, groups: list[str]) -> None:
        """A static token for `user` (who also gets `system:authenticated`)."""
        self._admin("POST", "users", {"token": token, "user": user, "groups": groups})

    def set_service_address(self, service: str, address: str) -> None:
        """Where the Service "NAMESPACE/NAME" of a webhook's clientConfig listens
        ("HOST:PORT"), until the next reset (like --service-address, at run time)."""
        self._admin("PUT", "service-addresses", {"service": service, "address": address})

    def reset(self) -> None:
        """Back to the seed state: objects, users, clock, faults and latency."""
        self._admin("POST", "reset")

    def advance_clock(self, seconds: float) -> None:
        """Move kubesim's clock forward (token expiry without waiting). The token
        authentication cache runs on the same clock, so its entries age as well."""
        self._admin("POST", "clock", {"advance_seconds": seconds})

    def requests(self) -> list[dict[str, Any]]:
        """API requests kubesim served since the last reset (method, path, verb, user, status,
        `at`: when it was answered, Unix time; status 0 is a dropped connection)."""
        answer: list[dict[str, Any]] = self._admin("GET", "requests")["requests"]
        return answer

    # --- faults ----------------------------------------------------------------------------

    def inject_fault(
        self,
        *,
        status: int | None = 500,
        methods: list[str] | None = None,
        resources: list[str] | None = None,
        probability: float = 1.0,
        count: int | None = None,
        retry_after: int | None = None,
        drop_connection: bool = False,
    ) -> None:
        """Fail matching API requests: `resources` are plural names, optionally with a
        subresource ("pods", "serviceaccounts/token"); `count` limits how often it fires."""
        self._admin(
            "POST",
            "faults",
            {
                "status": status,
                "methods": methods,
                "resources": resources,
                "probability": probability,
                "count": count,
                "retry_after": retry_after,
                "drop_connection": drop_connection,
            },
        )

    def set_latency(self, fixed_ms: float = 0, jitter_ms: float = 0) -> None:
        self._admin("PUT", "latency", {"fixed_ms": fixed_ms, "jitter_ms": jitter_ms})

    def clear_faults(self) -> None:
        """No injected errors or dropped connections, and latency back to the start value."""
        self._admin("DELETE", "faults")

    # --- process ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the process (the cluster is down; the port stays reserved for `start`)."""
        self.process.stop()

    def start(self) -> None:
        """Start again on the same port with the same CA; state is back to the seed."""
        if not self.process.running:
            self.process.start()

    def _admin(self, method: str, route: str, payload: Any = None) -> Any:
        verify: ssl.SSLContext | bool = False
        if self.ca_cert_pem is not None:
            verify = ssl.create_default_context(cadata=self.ca_cert_pem.decode())
        with httpx.Client(verify=verify, trust_env=False, timeout=30) as http:
            response = http.request(
                method,
                f"{self.url}/_kubesim/{route}",
                json=payload,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        body = response.json()
        if response.is_error:
            raise KubesimError(f"kubesim /_kubesim/{route}: {body.get('message', body)}")
        return body


def _handle(process: KubesimProcess) -> KubesimHandle:
    ttl = process.token_cache_ttl_seconds
    return KubesimHandle(
        url=process.url,
        admin_token=process.admin_token,
        admin_kubeconfig=process.kubeconfig_path,
        ca_cert_pem=process.ca_cert_pem,
        process=process,
        kube_version=process.kube_version or DEFAULT_KUBE_VERSION,
        token_cache_ttl_seconds=DEFAULT_TOKEN_CACHE_TTL_SECONDS if ttl is None else ttl,
    )


def launch_kubesim(
    directory: Path,
    seed: str | None = None,
    tls: bool = False,
    latency_ms: float = 0,
    token_max_seconds: int | None = None,
    token_cache_ttl_seconds: float | None = None,
    kube_version: str | None = None,
    service_addresses: Mapping[str, str] | None = None,
) -> KubesimHandle:
    """Start a kubesim process in `directory` (the fixtures' way; also for tests that need a
    process of wider scope, e.g. one per release for a module). The caller stops it."""
    seed_file = directory / "seed.yaml"
    seed_file.write_text(DEFAULT_SEED if seed is None else seed)
    process = KubesimProcess(
        directory=directory,
        admin_token=secrets.token_urlsafe(32),
        seed_file=seed_file,
        tls=tls,
        latency_ms=latency_ms,
        token_max_seconds=token_max_seconds,
        token_cache_ttl_seconds=token_cache_ttl_seconds,
        kube_version=str(KubeVersion.parse(kube_version))
        if kube_version
        else default_kube_version(),
        service_addresses=service_addresses,
    )
    process.start()
    return _handle(process)


@pytest.fixture(scope="session")
def _kubesim_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimHandle]:
    handle = launch_kubesim(tmp_path_factory.mktemp("kubesim-http"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def _kubesim_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimHandle]:
    handle = launch_kubesim(tmp_path_factory.mktemp("kubesim-https"), tls=True)
    yield handle
    handle.stop()


@pytest.fixture
def kubesim(_kubesim_http: KubesimHandle) -> KubesimHandle:
    """kubesim over HTTP, in its default seed state."""
    _kubesim_http.start()  # a previous test may have stopped it
    _kubesim_http.reset()
    return _kubesim_http


@pytest.fixture
def kubesim_tls(_kubesim_https: KubesimHandle) -> KubesimHandle:
    """kubesim over HTTPS (CA in the admin kubeconfig and `ca_cert_pem`), default seed."""
    _kubesim_https.start()
    _kubesim_https.reset()
    return _kubesim_https


@pytest.fixture
def kubesim_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., KubesimHandle]]:
    """Start dedicated kubesim processes: `factory(seed=None, tls=False, latency_ms=0,
    token_max_seconds=None, token_cache_ttl_seconds=None, kube_version=None,
    service_addresses=None)`; `seed=None` is the default seed, "" an empty cluster; None for the
    cache TTL is the apiserver's 10 s (0 turns the cache off), for the version
    `KUBESIM_KUBE_VERSION` or 1.35; `service_addresses` maps "NS/NAME" to "HOST:PORT" for
    webhook Services."""
    started: list[KubesimHandle] = []

    def factory(
        seed: str | None = None,
        tls: bool = False,
        latency_ms: float = 0,
        token_max_seconds: int | None = None,
        token_cache_ttl_seconds: float | None = None,
        kube_version: str | None = None,
        service_addresses: Mapping[str, str] | None = None,
    ) -> KubesimHandle:
        handle = launch_kubesim(
            tmp_path_factory.mktemp("kubesim"),
            seed,
            tls,
            latency_ms,
            token_max_seconds,
            token_cache_ttl_seconds,
            kube_version,
            service_addresses,
        )
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()

"""The token authentication cache, as kube-apiserver's (apiserver/pkg/authentication/token/cache,
its TestCachedTokenAuthenticator): successes are cached for 10 s, ServiceAccount tokens included;
failures are not cached; the entry's life starts at the lookup that made it; authorization is
never cached. So a token that worked a moment ago outlives its ServiceAccount briefly, while a
deleted RoleBinding denies at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle

NAMESPACE = "scangate-grants"


def _configuration(handle: KubesimHandle, token: str) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = handle.url
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = False
    return configuration


def _status_reading_web_0(handle: KubesimHandle, token: str) -> int:
    """200, or the status kubesim refused the token's GET of payments/web-0 with."""
    with client.ApiClient(_configuration(handle, token)) as api:
        try:
            client.CoreV1Api(api).read_namespaced_pod("web-0", "payments")
        except ApiException as refused:
            return int(refused.status)
    return 200


def _grant_reader(handle: KubesimHandle, name: str, bound_pod: str | None = None) -> str:
    """A ServiceAccount that may get payments/web-0, and a fresh token for it (bound to
    `bound_pod` in its own namespace when given)."""
    handle.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": NAMESPACE},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["pods"],
                        "verbs": ["get"],
                        "resourceNames": ["web-0"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": "payments"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            },
        ]
    )
    spec: dict[str, object] = {"expirationSeconds": 600}
    if bound_pod is not None:
        with handle.admin_client() as api:
            pod = client.CoreV1Api(api).read_namespaced_pod(bound_pod, NAMESPACE)
        spec["boundObjectRef"] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": bound_pod,
            "uid": pod.metadata.uid,
        }
    with handle.admin_client() as api:
        response = client.CoreV1Api(api).create_namespaced_service_account_token(
            name, NAMESPACE, {"spec": spec}
        )
    token: str = response.status.token
    return token


@pytest.fixture
def sim(kubesim: KubesimHandle) -> KubesimHandle:
    kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return kubesim


def _delete(handle: KubesimHandle, kind: str, name: str) -> None:
    with handle.admin_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        deleters: dict[str, Callable[[], object]] = {
            "ServiceAccount": lambda: core.delete_namespaced_service_account(name, NAMESPACE),
            "Pod": lambda: core.delete_namespaced_pod(name, NAMESPACE),
            "RoleBinding": lambda: rbac.delete_namespaced_role_binding(name, "payments"),
            "Role": lambda: rbac.delete_namespaced_role(name, "payments"),
        }
        deleters[kind]()


def test_a_used_token_outlives_its_service_account_until_the_cache_entry_expires(
    sim: KubesimHandle,
) -> None:
    token = _grant_reader(sim, "reader")
    assert _status_reading_web_0(sim, token) == 200  # authenticated: cached for 10 s

    _delete(sim, "ServiceAccount", "reader")
    assert _status_reading_web_0(sim, token) == 200  # as on a real apiserver

    sim.advance_clock(10)  # the cache runs on kubesim's clock
    assert _status_reading_web_0(sim, token) == 401


def test_a_token_never_used_dies_with_its_service_account_at_once(sim: KubesimHandle) -> None:
    token = _grant_reader(sim, "reader")
    _delete(sim, "ServiceAccount", "reader")

    assert _status_reading_web_0(sim, token) == 401


def test_a_token_bound_to_a_deleted_pod_is_cached_like_any_other(sim: KubesimHandle) -> None:
    sim.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "runner", "namespace": NAMESPACE},
            "spec": {"serviceAccountName": "reader", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running"},
        }
    )
    token = _grant_reader(sim, "reader", bound_pod="runner")
    assert _status_reading_web_0(sim, token) == 200

    _delete(sim, "Pod", "runner")
    assert _status_reading_web_0(sim, token) == 200
    sim.advance_clock(10)
    assert _status_reading_web_0(sim, token) == 401


@pytest.mark.parametrize("kind", ["RoleBinding", "Role"])
def test_authorization_is_not_cached_a_deleted_binding_denies_at_once(
    sim: KubesimHandle, kind: str
) -> None:
    token = _grant_reader(sim, "reader")
    assert _status_reading_web_0(sim, token) == 200

    _delete(sim, kind, "reader")

    assert _status_reading_web_0(sim, token) == 403


def test_the_entry_lives_from_its_lookup_and_hits_do_not_extend_it(sim: KubesimHandle) -> None:
    token = _grant_reader(sim, "reader")
    assert _status_reading_web_0(sim, token) == 200  # cached until t+10
    sim.advance_clock(6)
    assert _status_reading_web_0(sim, token) == 200  # a hit
    _delete(sim, "ServiceAccount", "reader")

    sim.advance_clock(4.5)  # t+10.5: past the first lookup's entry, though 4.5 s after a hit

    assert _status_reading_web_0(sim, token) == 401


def test_a_cached_authentication_outlasts_the_tokens_expiry(sim: KubesimHandle) -> None:
    token = _grant_reader(sim, "reader")  # exp = issue + 600; accepted until exp + 60
    sim.advance_clock(600 + 55)
    assert _status_reading_web_0(sim, token) == 200  # inside the leeway: cached until +665

    sim.advance_clock(8)  # +663: past the leeway, still cached
    assert _status_reading_web_0(sim, token) == 200
    sim.advance_clock(3)  # +666: the entry expired and the token is checked again
    assert _status_reading_web_0(sim, token) == 401


def test_failures_are_not_cached(sim: KubesimHandle) -> None:
    assert _status_reading_web_0(sim, "late-token") == 401

    sim.add_user_token("late-token", "carol", ["system:masters"])

    assert _status_reading_web_0(sim, "late-token") == 200


def test_token_review_answers_from_the_same_cache(sim: KubesimHandle) -> None:
    token = _grant_reader(sim, "reader")
    assert _status_reading_web_0(sim, token) == 200
    _delete(sim, "ServiceAccount", "reader")

    with sim.admin_client() as api:
        review = client.AuthenticationV1Api(api).create_token_review({"spec": {"token": token}})

    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{NAMESPACE}:reader"


@pytest.fixture
def uncached(kubesim_factory: Callable[..., KubesimHandle]) -> KubesimHandle:
    handle = kubesim_factory(token_cache_ttl_seconds=0)
    handle.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return handle


def test_a_zero_ttl_turns_the_cache_off(uncached: KubesimHandle) -> None:
    token = _grant_reader(uncached, "reader")
    assert _status_reading_web_0(uncached, token) == 200

    _delete(uncached, "ServiceAccount", "reader")

    assert _status_reading_web_0(uncached, token) == 401


def test_the_admin_state_reports_the_cache_ttl(sim: KubesimHandle, uncached: KubesimHandle) -> None:
    for handle, ttl in ((sim, 10.0), (uncached, 0.0)):
        state = httpx.get(
            f"{handle.url}/_kubesim/state",
            headers={"Authorization": f"Bearer {handle.admin_token}"},
            trust_env=False,
        ).json()
        assert (state["token_cache_ttl_seconds"], handle.token_cache_ttl_seconds) == (ttl, ttl)


def test_a_negative_ttl_is_refused_at_startup() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubesim", "--admin-token", "t", "--token-cache-ttl-seconds", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "--token-cache-ttl-seconds must not be negative" in result.stderr

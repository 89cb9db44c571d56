"""What a grant can reach beyond the API: exec/debug grants record, per pod, its ServiceAccount,
whether that account's token is mounted, and the Secrets and ConfigMaps it mounts or hands its
containers through env; a policy's `allow_pods_with` refuses pods exposing more (422, grant
`rejected`). Sidecar grants reach no container, so none of this applies to them. Both databases,
kubesim over a socket."""

from __future__ import annotations

from typing import Any

import kubernetes.client as k8s
import pytest

pytestmark = pytest.mark.anyio

# Pods as kube-apiserver stores them: the ServiceAccount admission plugin has already written the
# projected `kube-api-access-*` volume into `exposed-0`'s spec; `sealed-0` opted out.
EXPOSURE_SEED = """\
apiVersion: v1
kind: Pod
metadata: {name: exposed-0, namespace: payments, labels: {app: exposed}}
spec:
  serviceAccountName: web
  volumes:
    - name: kube-api-access-x7k2p
      projected:
        sources:
          - serviceAccountToken: {path: token, expirationSeconds: 3607}
          - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
          - downwardAPI:
              items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]
    - {name: tls, secret: {secretName: web-tls}}
    - name: bundle
      projected:
        sources:
          - secret: {name: signing-key}
          - configMap: {name: feature-flags}
    - {name: settings, configMap: {name: web-settings}}
  initContainers:
    - name: proxy
      image: "registry.example/proxy:1.0"
      restartPolicy: Always
      envFrom: [{configMapRef: {name: proxy-config}}]
    - name: migrate
      image: "registry.example/migrate:1.0"
      env: [{name: ADMIN_PASSWORD, valueFrom: {secretKeyRef: {name: db-admin, key: password}}}]
  containers:
    - name: app
      image: "registry.example/web:1.4.2"
      env:
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db-credentials, key: password}}}
        - {name: MODE, valueFrom: {configMapKeyRef: {name: web-settings, key: mode}}}
      envFrom: [{secretRef: {name: api-keys}}]
      volumeMounts:
        - {name: kube-api-access-x7k2p, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}
        - {name: tls, mountPath: /tls}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: sealed-0, namespace: payments, labels: {app: sealed}}
spec:
  serviceAccountName: batch
  automountServiceAccountToken: false
  containers:
    - {name: app, image: "registry.example/batch:2.0", env: [{name: MODE, value: scan}]}
status: {phase: Running}
"""

EXPOSED = {
    "service_account": "web",
    "automount_service_account_token": None,
    "service_account_token": True,
    "secret_volumes": ["signing-key", "web-tls"],
    # `migrate` is an ordinary init container: it has finished, nothing can exec into it.
    "secret_env": {"app": ["api-keys", "db-credentials"]},
    # kube-root-ca.crt is the token's CA bundle, projected beside it: part of the token.
    "configmap_volumes": ["feature-flags", "web-settings"],
    "configmap_env": {"app": ["web-settings"], "proxy": ["proxy-config"]},
}
SEALED = {
    "service_account": "batch",
    "automount_service_account_token": False,
    "service_account_token": False,
    "secret_volumes": [],
    "secret_env": {},
    "configmap_volumes": [],
    "configmap_env": {},
}
EVERYTHING = [
    "service_account_token", "secret_volumes", "secret_env", "configmap_volumes", "configmap_env",
]  # fmt: skip


@pytest.fixture
def exposure_sim(sim: Any) -> Any:
    sim.apply(EXPOSURE_SEED)
    return sim


def problem(response: Any, slug: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://scangate.dev/problems/{slug}", body
    return body


async def only_grant(scangate: Any, status: str) -> dict[str, Any]:
    response = await scangate.request("GET", "/v1/grants", params={"status": status})
    [grant] = response.json()["items"]
    return dict(grant)


async def test_exec_grant_records_what_its_pods_expose(scangate: Any, exposure_sim: Any) -> None:
    grant = await scangate.grant(pods=["exposed-0", "sealed-0"], scanner="debug")

    assert grant["exposure"] == {"exposed-0": EXPOSED, "sealed-0": SEALED}
    shown = (await scangate.get(grant["id"])).json()
    assert shown["exposure"] == grant["exposure"]
    [activated] = [e for e in await scangate.events(grant["id"]) if e["type"] == "activated"]
    assert activated["detail"]["exposure"] == grant["exposure"]


async def test_selector_grant_records_the_exposure_of_the_pods_it_resolved_to(
    scangate: Any, exposure_sim: Any
) -> None:
    grant = await scangate.grant(selector="app in (sealed, web)")

    assert grant["pods"] == ["sealed-0", "web-0", "web-1"]
    assert grant["exposure"]["sealed-0"] == SEALED
    # The default seed's pods carry no token volume: kubesim runs no admission plugin that
    # would add one, and scangate reports the spec as stored.
    assert grant["exposure"]["web-0"]["service_account"] == "default"
    assert grant["exposure"]["web-0"]["service_account_token"] is False


async def test_sidecar_grants_reach_no_container_so_have_no_exposure(
    deployment: Any, exposure_sim: Any
) -> None:
    deployment.document["policies"][0]["allow_pods_with"] = []
    deployment.reconfigure()
    async with deployment.running() as scangate:
        # web-0 has the sidecar; a strict policy does not refuse it: only its logs are read.
        grant = await scangate.grant(scanner="sidecar", pods=["web-0"])

        assert grant["exposure"] is None
        assert (await scangate.get(grant["id"])).json()["exposure"] is None


async def test_strict_policy_refuses_pods_that_expose_anything_and_rejects_the_grant(
    deployment: Any, exposure_sim: Any
) -> None:
    deployment.document["policies"][0]["allow_pods_with"] = []
    deployment.reconfigure()
    async with deployment.running() as scangate:
        body = problem(
            await scangate.create(pods=["exposed-0", "sealed-0"]), "pod-exposure-refused"
        )

        assert body["pods"] == {"exposed-0": EVERYTHING}
        assert body["exposure"] == {"exposed-0": EXPOSED}
        assert body["allow_pods_with"] == []
        assert body["errors"][0]["field"] == "body.pods"
        assert "pod 'exposed-0' exposes service_account_token, secret_volumes" in body["detail"]
        assert "policy 'payments-ci'" in body["detail"]
        rejected = await only_grant(scangate, "rejected")
        assert rejected["pods"] == ["exposed-0", "sealed-0"]
        assert "exposed-0" in rejected["last_error"]
        assert (await scangate.request("GET", "/v1/grants")).json()["items"] == []
        assert not exposure_sim_has_grant_objects(exposure_sim, rejected["id"])

        # A pod that exposes nothing is still grantable under the same policy.
        grant = await scangate.grant(pods=["sealed-0"])
        assert grant["exposure"] == {"sealed-0": SEALED}


async def test_policy_may_allow_some_exposures_and_refuse_the_rest(
    deployment: Any, exposure_sim: Any
) -> None:
    deployment.document["policies"][0]["allow_pods_with"] = [
        "service_account_token", "configmap_volumes", "configmap_env",
    ]  # fmt: skip
    deployment.reconfigure()
    async with deployment.running() as scangate:
        body = problem(await scangate.create(selector="app=exposed"), "pod-exposure-refused")

        assert body["pods"] == {"exposed-0": ["secret_volumes", "secret_env"]}
        assert body["errors"][0]["field"] == "body.selector"
        assert (await only_grant(scangate, "rejected"))["selector"] == "app=exposed"
        whoami = (await scangate.request("GET", "/v1/whoami")).json()
        assert whoami["policies"][0]["allow_pods_with"] == [
            "service_account_token", "configmap_volumes", "configmap_env",
        ]  # fmt: skip


def exposure_sim_has_grant_objects(sim: Any, grant_id: str) -> bool:
    api = sim.admin_client()
    selector = f"scangate.dev/grant={grant_id}"
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    return bool(
        core.list_service_account_for_all_namespaces(label_selector=selector).items
        or rbac.list_role_for_all_namespaces(label_selector=selector).items
        or rbac.list_role_binding_for_all_namespaces(label_selector=selector).items
    )

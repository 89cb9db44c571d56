"""Exec and attach authorization by release (`--kube-version`), the bearer-token WebSocket
subprotocol, and what `/version` reports.

The verb table follows kube-apiserver: the WebSocket upgrade is a GET, authorized as `get`
by the request filter on every release; from 1.35 the pod's connect handler also requires
`create` (AuthorizePodWebsocketUpgradeCreatePermission; pkg/registry/core/pod/rest), and the
SPDY POST, already a `create`, is not asked twice. The subprotocol table follows
apiserver/pkg/authentication/request/websocket (ProtocolAuthenticator).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle, launch_kubesim

V5 = "v5.channel.k8s.io"
BEARER = "base64url.bearer.authorization.k8s.io."
POD = "/api/v1/namespaces/payments/pods/web-0"
EXEC = f"{POD}/exec?container=app&command=true"
ATTACH = f"{POD}/attach?container=app&stdin=1"
GET_ONLY, CREATE_ONLY, BOTH, NEITHER = ("get",), ("create",), ("get", "create"), ()


@pytest.fixture(scope="module", params=["1.30", "1.34", "1.35"])
def release(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubesimHandle]:
    handle = launch_kubesim(tmp_path_factory.mktemp("kubesim"), kube_version=request.param)
    yield handle
    handle.stop()


@pytest.fixture
def sim(release: KubesimHandle) -> KubesimHandle:
    release.reset()
    return release


def _token_with(handle: KubesimHandle, subresource: str, verbs: tuple[str, ...]) -> str:
    """A token of ServiceAccount default/holder that may get pod web-0 and use `verbs` on
    its `subresource` (and nothing else)."""
    rules: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    if verbs:
        rules.append({"apiGroups": [""], "resources": [subresource], "verbs": list(verbs)})
    rbac = "rbac.authorization.k8s.io"
    handle.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "holder"}},
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": "holder", "namespace": "payments"},
                "rules": rules,
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "holder", "namespace": "payments"},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "holder"},
                "subjects": [{"kind": "ServiceAccount", "name": "holder", "namespace": "default"}],
            },
        ]
    )
    with handle.admin_client() as api:
        response = client.CoreV1Api(api).create_namespaced_service_account_token(
            "holder", "default", {"spec": {"expirationSeconds": 600}}
        )
    token: str = response.status.token
    return token


def _websocket(
    handle: KubesimHandle, path: str, token: str | None, protocols: list[str]
) -> websocket.WebSocket:
    header = [f"Authorization: Bearer {token}"] if token is not None else []
    return websocket.create_connection(
        handle.url.replace("http", "ws", 1) + path,
        header=header,
        subprotocols=protocols,
        timeout=10,
    )


def _refusal(handle: KubesimHandle, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """The status and Status body of a refused upgrade; (101, {}) when it was accepted."""
    try:
        ws = _websocket(handle, path, token, [V5])
    except websocket.WebSocketBadStatusException as refused:
        return refused.status_code, json.loads(refused.resp_body)
    ws.close()
    return 101, {}


def _needs_create(handle: KubesimHandle) -> bool:
    return handle.kube_version == "1.35"


@pytest.mark.parametrize("subresource", ["exec", "attach"])
@pytest.mark.parametrize(
    ("verbs", "allowed_before_1_35", "allowed_from_1_35"),
    [
        (BOTH, True, True),
        (GET_ONLY, True, False),  # 1.35: the connect handler's `create` check refuses
        (CREATE_ONLY, False, False),  # the GET itself is never authorized as `create`
        (NEITHER, False, False),
    ],
)
def test_websocket_upgrade_verbs_by_release(
    sim: KubesimHandle,
    subresource: str,
    verbs: tuple[str, ...],
    allowed_before_1_35: bool,
    allowed_from_1_35: bool,
) -> None:
    token = _token_with(sim, f"pods/{subresource}", verbs)
    path = EXEC if subresource == "exec" else ATTACH

    status, body = _refusal(sim, path, token)

    allowed = allowed_from_1_35 if _needs_create(sim) else allowed_before_1_35
    assert status == (101 if allowed else 403), body
    if "get" not in verbs:  # the request filter's refusal names the GET's verb
        assert f'cannot get resource "pods/{subresource}"' in body["message"]
    elif not allowed:  # NewForbidden(pods, name, reason): RBAC gives no reason
        assert body["message"] == 'pods "web-0" is forbidden: '
        assert body["details"] == {"name": "web-0", "kind": "pods"}


def test_the_create_check_comes_after_the_query_options_and_before_the_pod(
    sim: KubesimHandle,
) -> None:
    token = _token_with(sim, "pods/exec", GET_ONLY)
    bad_option = _refusal(sim, f"{POD}/exec?container=app&command=true&tty=maybe", token)
    missing_pod = _refusal(sim, "/api/v1/namespaces/payments/pods/nope/exec?command=true", token)

    assert bad_option[0] == 400
    # With `get` on every pod the filter lets it through; the connect handler then asks
    # for `create` (1.35) before looking the pod up.
    assert missing_pod[0] == (403 if _needs_create(sim) else 404)


@pytest.mark.parametrize(("verbs", "status"), [(CREATE_ONLY, 501), (GET_ONLY, 403)])
def test_an_spdy_post_is_authorized_as_create_only(
    sim: KubesimHandle, verbs: tuple[str, ...], status: int
) -> None:
    # kubectl's fallback: with `create` a real cluster would stream over SPDY on any release;
    # kubesim has no SPDY and says so (501), after authorizing exactly as the apiserver does.
    token = _token_with(sim, "pods/exec", verbs)
    response = httpx.post(
        f"{sim.url}{EXEC}",
        headers={"Authorization": f"Bearer {token}", "Upgrade": "SPDY/3.1"},
        trust_env=False,
    )

    assert response.status_code == status
    if status == 403:
        assert 'cannot create resource "pods/exec"' in response.json()["message"]


# --- the bearer-token subprotocol --------------------------------------------------------------


def _protocol(token: str) -> str:
    return BEARER + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def test_a_token_in_the_subprotocol_authenticates_and_is_not_echoed(sim: KubesimHandle) -> None:
    token = _token_with(sim, "pods/exec", BOTH)

    ws = _websocket(sim, EXEC, None, [_protocol(token), V5])

    assert ws.getsubprotocol() == V5
    _, data = ws.recv_data()
    assert data[0] == 3  # the error channel: the command ran
    assert json.loads(data[1:]) == {"metadata": {}, "status": "Success"}
    ws.close()


def test_the_subprotocol_token_is_authorized_as_its_own_user(sim: KubesimHandle) -> None:
    token = _token_with(sim, "pods/exec", NEITHER)

    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _websocket(sim, EXEC, None, [_protocol(token), V5])

    assert refused.value.status_code == 403
    assert "system:serviceaccount:default:holder" in json.loads(refused.value.resp_body)["message"]


@pytest.mark.parametrize(
    "offered",
    [
        pytest.param(lambda t: [_protocol(t)], id="no other subprotocol"),
        pytest.param(lambda t: [_protocol(t), _protocol(t), V5], id="two tokens"),
        pytest.param(lambda t: [_protocol(t) + "+", V5], id="standard base64 alphabet"),
        pytest.param(lambda t: [BEARER + "%%%", V5], id="not base64url"),
        pytest.param(lambda t: [_protocol("not-a-token"), V5], id="unknown token"),
        pytest.param(
            lambda t: [BEARER.rstrip(".") + "x" + _protocol(t)[len(BEARER) :], V5],
            id="wrong prefix",
        ),
    ],
)
def test_bad_subprotocol_tokens_are_unauthorized(sim: KubesimHandle, offered: Any) -> None:
    token = _token_with(sim, "pods/exec", BOTH)

    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _websocket(sim, EXEC, None, offered(token))

    assert refused.value.status_code == 401
    assert token not in refused.value.resp_body.decode()


def test_the_header_is_tried_first_and_a_bad_subprotocol_token_does_not_undo_it(
    sim: KubesimHandle,
) -> None:
    token = _token_with(sim, "pods/exec", BOTH)

    ws = _websocket(sim, EXEC, token, [BEARER + "%%%", V5])

    assert ws.getsubprotocol() == V5
    ws.close()


# --- /version and the flag ---------------------------------------------------------------------


def test_version_reports_the_release(sim: KubesimHandle) -> None:
    minor = sim.kube_version.split(".")[1]

    with sim.admin_client() as api:
        info = client.VersionApi(api).get_code()

    assert (info.major, info.minor, info.git_version) == ("1", minor, f"v1.{minor}.0")


@pytest.mark.parametrize("version", ["1.29", "1.36", "2.0", "latest", "1.35.1"])
def test_an_unsupported_release_is_refused_at_startup(tmp_path: Path, version: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubesim", "--admin-token", "t", "--kube-version", version],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert f"unsupported Kubernetes version '{version}'" in result.stderr
    assert "1.30, 1.31, 1.32, 1.33, 1.34, 1.35" in result.stderr

"""An exec or attach stream outlives the credentials that opened it, as at the kubelet:
authentication and authorization happen once, at the upgrade, and the apiserver then only
proxies bytes. Revoking the token's ServiceAccount, Role and RoleBinding (even with the token
past its expiry and the cache entry gone) ends no stream already open; only new requests are
denied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import websocket
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle

V5 = "v5.channel.k8s.io"
POD = "/api/v1/namespaces/payments/pods/web-0"


@pytest.fixture
def holder_token(kubesim: KubesimHandle) -> str:
    """A token of scangate-grants/holder that may get, exec into and attach to web-0."""
    rbac = "rbac.authorization.k8s.io"
    kubesim.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "holder", "namespace": "scangate-grants"},
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": "holder", "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["pods", "pods/exec", "pods/attach"],
                        "verbs": ["get", "create"],
                        "resourceNames": ["web-0"],
                    }
                ],
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "holder", "namespace": "payments"},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "holder"},
                "subjects": [
                    {"kind": "ServiceAccount", "name": "holder", "namespace": "scangate-grants"}
                ],
            },
        ]
    )
    with kubesim.admin_client() as api:
        response = client.CoreV1Api(api).create_namespaced_service_account_token(
            "holder", "scangate-grants", {"spec": {"expirationSeconds": 600}}
        )
    token: str = response.status.token
    return token


def _open(handle: KubesimHandle, path: str, token: str) -> websocket.WebSocket:
    return websocket.create_connection(
        handle.url.replace("http", "ws", 1) + path,
        header=[f"Authorization: Bearer {token}"],
        subprotocols=[V5],
        timeout=10,
    )


def _revoke_everything(handle: KubesimHandle) -> None:
    with handle.admin_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.delete_namespaced_role_binding("holder", "payments")
        rbac.delete_namespaced_role("holder", "payments")
        client.CoreV1Api(api).delete_namespaced_service_account("holder", "scangate-grants")
    # Past the token's expiry and its leeway, and past any cached authentication.
    handle.advance_clock(600 + 61 + handle.token_cache_ttl_seconds)


def _upgrade_status(handle: KubesimHandle, path: str, token: str) -> int:
    try:
        _open(handle, path, token).close()
    except websocket.WebSocketBadStatusException as refused:
        return int(refused.status_code)
    return 101


def _until_closed(ws: websocket.WebSocket) -> dict[int, bytes]:
    received: dict[int, bytes] = {}
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return received
        received[data[0]] = received.get(data[0], b"") + data[1:]


@pytest.fixture
def open_exec(kubesim: KubesimHandle, holder_token: str) -> Iterator[websocket.WebSocket]:
    """`cat` in web-0 with stdin attached, still waiting for its input."""
    ws = _open(kubesim, f"{POD}/exec?container=app&command=cat&stdin=true", holder_token)
    ws.send_binary(b"\x00before revocation\n")
    yield ws
    ws.close()


def test_an_open_exec_keeps_running_after_its_credentials_are_revoked(
    kubesim: KubesimHandle, holder_token: str, open_exec: websocket.WebSocket
) -> None:
    _revoke_everything(kubesim)
    # New requests with the token are denied (the ServiceAccount is gone: 401)...
    assert _upgrade_status(kubesim, f"{POD}/exec?container=app&command=true", holder_token) in (
        401,
        403,
    )

    # ...while the stream opened before keeps carrying input and output to the end.
    open_exec.send_binary(b"\x00after revocation\n")
    open_exec.send_binary(bytes([255, 0]))  # v5: close stdin
    received: dict[int, Any] = _until_closed(open_exec)

    assert received[1] == b"before revocation\nafter revocation\n"
    assert json.loads(received[3]) == {"metadata": {}, "status": "Success"}


def test_an_open_attach_stays_open_after_its_credentials_are_revoked(
    kubesim: KubesimHandle, holder_token: str
) -> None:
    ws = _open(kubesim, f"{POD}/attach?container=app&stdin=true", holder_token)
    _revoke_everything(kubesim)

    ws.send_binary(b"\x00still typing\n")
    ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data()  # the silent main process: nothing comes back, nothing is closed
    assert ws.connected
    assert _upgrade_status(kubesim, f"{POD}/attach?container=app&stdin=true", holder_token) in (
        401,
        403,
    )
    ws.close()

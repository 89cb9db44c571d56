"""pods/exec and pods/attach over WebSocket: the `kubernetes` client's stream(), and the
channel protocol itself (v4/v5 frames, the error channel's Status) seen with a raw WebSocket."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import websocket
from kubernetes import client
from kubernetes.stream import stream

from kubesim.pytest_plugin import KubesimHandle
from kubesim.userland.filesystem import DEFAULT_OS_RELEASE
from tests.support.kubesim_clients import grant_exec_profile, token_client

EXEC = "/api/v1/namespaces/payments/pods/web-0/exec"
V4, V5 = "v4.channel.k8s.io", "v5.channel.k8s.io"


@pytest.fixture(params=["http", "https"])
def cluster(
    request: pytest.FixtureRequest, kubesim: KubesimHandle, kubesim_tls: KubesimHandle
) -> KubesimHandle:
    return kubesim if request.param == "http" else kubesim_tls


@pytest.fixture
def core(cluster: KubesimHandle) -> Iterator[client.CoreV1Api]:
    """The official client with a token holding scangate's exec profile for web-0."""
    with token_client(cluster, grant_exec_profile(cluster, ["web-0"])) as api:
        yield client.CoreV1Api(api)


def _exec(core: client.CoreV1Api, command: list[str], **kwargs: Any) -> Any:
    options = {"container": "app", "stderr": True, "stdin": False, "stdout": True, "tty": False}
    options.update(kwargs)
    return stream(
        core.connect_get_namespaced_pod_exec, "web-0", "payments", command=command, **options
    )


def test_stream_returns_the_output_of_a_command(core: client.CoreV1Api) -> None:
    assert _exec(core, ["cat", "/etc/os-release"]) == DEFAULT_OS_RELEASE


def test_stream_reports_exit_code_and_separate_stderr(core: client.CoreV1Api) -> None:
    response = _exec(core, ["sh", "-c", "echo hi; echo oops >&2; exit 7"], _preload_content=False)
    response.run_forever(timeout=10)

    assert response.subprotocol == V5
    assert (response.read_stdout(), response.read_stderr()) == ("hi\n", "oops\n")
    assert response.returncode == 7


def test_stream_stdin_ends_with_the_v5_close_signal(core: client.CoreV1Api) -> None:
    response = _exec(core, ["sh", "-c", "grep -n b"], stdin=True, _preload_content=False)
    response.write_stdin("a\nb\nab\n")
    response.close_channel(0)
    response.run_forever(timeout=10)

    assert response.read_stdout() == "2:b\n3:ab\n"
    assert response.returncode == 0


def test_stream_is_refused_for_a_pod_outside_the_grant(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as refused:
        stream(
            core.connect_get_namespaced_pod_exec, "web-1", "payments", command=["true"],
            container="app", stderr=True, stdin=False, stdout=True, tty=False,
        )  # fmt: skip

    assert "Handshake status 403 Forbidden" in str(refused.value)
    assert 'cannot get resource \\"pods/exec\\"' in str(refused.value)


# --- the wire protocol, with a raw WebSocket ---------------------------------------------------


def _connect(
    handle: KubesimHandle, path: str, token: str | None = None, protocols: tuple[str, ...] = (V5,)
) -> websocket.WebSocket:
    sslopt: dict[str, Any] = {}
    if handle.ca_cert_pem is not None:
        sslopt = {"context": ssl.create_default_context(cadata=handle.ca_cert_pem.decode())}
    return websocket.create_connection(
        handle.url.replace("http", "ws", 1) + path,
        header=[f"Authorization: Bearer {token or handle.admin_token}"],
        subprotocols=list(protocols),
        sslopt=sslopt,
        timeout=10,
    )


def _channels(ws: websocket.WebSocket) -> dict[int, bytes]:
    """Everything the server sent, by channel, until it closed the connection."""
    received: dict[int, bytes] = {}
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return received
        received[data[0]] = received.get(data[0], b"") + data[1:]


@pytest.mark.parametrize(
    ("offered", "chosen"), [((V4,), V4), ((V5, V4), V5), ((V4, V5), V4), (("bogus", V4), V4)]
)
def test_the_subprotocol_is_the_first_offered_that_kubesim_speaks(
    kubesim: KubesimHandle, offered: tuple[str, ...], chosen: str
) -> None:
    ws = _connect(kubesim, f"{EXEC}?container=app&command=true", protocols=offered)

    assert ws.getsubprotocol() == chosen
    assert json.loads(_channels(ws)[3]) == {"metadata": {}, "status": "Success"}


def test_the_error_channel_carries_the_kubelets_exit_code_status(kubesim: KubesimHandle) -> None:
    query = "container=app&command=sh&command=-c&command=exit%203"
    ws = _connect(kubesim, f"{EXEC}?{query}", protocols=(V4,))

    assert json.loads(_channels(ws)[3]) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: command 'sh -c exit 3' "
        "exited with 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }


def test_empty_arguments_survive_the_query_string(kubesim: KubesimHandle) -> None:
    ws = _connect(kubesim, f"{EXEC}?container=app&command=echo&command=&command=x")

    assert _channels(ws)[1] == b" x\n"


def test_a_tty_has_one_output_stream_with_crlf(kubesim: KubesimHandle) -> None:
    script = "echo a; echo b >&2"
    query = urlencode(
        [("container", "app"), ("tty", "true"), ("stdin", "true")]
        + [("command", word) for word in ("sh", "-c", script)]
    )
    ws = _connect(kubesim, f"{EXEC}?{query}")
    ws.send_binary(b'\x04{"Width":80,"Height":24}')  # resize: accepted, nothing to redraw

    received = _channels(ws)

    assert received[1] == b"a\r\nb\r\n"
    assert 2 not in received


def test_v4_stdin_without_a_close_signal_ends_when_the_client_hangs_up(
    kubesim: KubesimHandle,
) -> None:
    ws = _connect(kubesim, f"{EXEC}?container=app&stdin=true&command=cat", protocols=(V4,))
    ws.send_binary(b"\x00never answered")
    ws.close()

    # The server dropped that session cleanly and keeps serving.
    again = _connect(kubesim, f"{EXEC}?container=app&command=hostname")
    assert _channels(again)[1] == b"web-0\n"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("container=app", "you must specify at least one command for the container"),
        (
            "container=app&command=true&stdout=false&stderr=false",
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        (
            "container=app&command=true&stdin=yes",
            'strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (
            "command=true",
            "a container name must be specified for pod web-0, choose one of: [app scanner]",
        ),
    ],
)
def test_bad_stream_options_are_refused_before_the_upgrade(
    kubesim: KubesimHandle, query: str, message: str
) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(kubesim, f"{EXEC}?{query}")

    assert refused.value.status_code == 400
    assert json.loads(refused.value.resp_body)["message"] == message


def test_a_client_without_a_channel_subprotocol_is_refused(kubesim: KubesimHandle) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(kubesim, f"{EXEC}?container=app&command=true", protocols=("channel.k8s.io",))

    assert refused.value.status_code == 400
    assert (
        "kubesim supports [v5.channel.k8s.io v4.channel.k8s.io]"
        in (json.loads(refused.value.resp_body)["message"])
    )


def test_a_bad_token_is_unauthorized_before_the_upgrade(kubesim: KubesimHandle) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(kubesim, f"{EXEC}?container=app&command=true", token="not-a-token")

    assert refused.value.status_code == 401
    assert json.loads(refused.value.resp_body)["reason"] == "Unauthorized"


def test_attach_needs_its_own_permission(kubesim: KubesimHandle) -> None:
    token = grant_exec_profile(kubesim, ["web-0"])
    attach = "/api/v1/namespaces/payments/pods/web-0/attach?container=app"

    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(kubesim, attach, token=token)

    assert refused.value.status_code == 403
    assert 'cannot get resource "pods/attach"' in json.loads(refused.value.resp_body)["message"]


def test_attach_holds_a_silent_stream_open(kubesim: KubesimHandle) -> None:
    ws = _connect(kubesim, "/api/v1/namespaces/payments/pods/web-0/attach?container=app&stdin=1")
    ws.send_binary(b"\x00typed into the main process\n")
    ws.settimeout(0.3)

    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data()
    assert ws.connected
    ws.close()


def test_injected_faults_apply_to_exec_upgrades(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=503, resources=["pods/exec"], retry_after=2, count=1)

    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(kubesim, f"{EXEC}?container=app&command=true")
    assert refused.value.status_code == 503

    again = _connect(kubesim, f"{EXEC}?container=app&command=true")  # the fault fired once
    assert json.loads(_channels(again)[3])["status"] == "Success"

"""The real `kubectl exec` (1.32: WebSocket, subprotocol v5.channel.k8s.io) against kubesim.

kubectl runs over TLS (it sends no bearer token over plain HTTP) with a ServiceAccount token
whose Role is exactly scangate's `exec` profile for pod web-0. When kubectl's WebSocket upgrade
is refused it retries over SPDY (client-go's FallbackExecutor), so a refusal shows up in
kubesim's request log as a GET and then a POST with the same answer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle
from kubesim.userland.filesystem import DEFAULT_OS_RELEASE
from tests.support.kubesim_clients import grant_exec_profile, kubectl


@pytest.fixture
def scanner_kubeconfig(kubesim_tls: KubesimHandle, tmp_path: Path) -> Path:
    token = grant_exec_profile(kubesim_tls, ["web-0"])
    return kubesim_tls.token_kubeconfig(token, tmp_path / "scanner.kubeconfig", "payments")


def exec_in(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=20s", "exec"]
    if stdin is not None:
        command.append("-i")
    return subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def exec_requests(handle: KubesimHandle) -> list[tuple[str, str, int]]:
    return [
        (r["method"], r["name"], r["status"])
        for r in handle.requests()
        if r["subresource"] == "exec"
    ]


def test_kubectl_exec_prints_a_file_of_the_granted_pod(
    kubesim_tls: KubesimHandle, scanner_kubeconfig: Path
) -> None:
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "cat", "/etc/os-release")

    assert result.returncode == 0, result.stderr
    assert result.stdout == DEFAULT_OS_RELEASE
    assert result.stderr == ""
    # One WebSocket upgrade (101), no SPDY fallback.
    assert exec_requests(kubesim_tls) == [("GET", "web-0", 101)]


@pytest.mark.parametrize(
    ("command", "exit_code"),
    [
        (["sh", "-c", "exit 3"], 3),
        (["test", "-f", "/nope"], 1),
        (["test", "-f", "/etc/passwd"], 0),
        (["sh", "-c", "grep -q '^ID=debian' /etc/os-release && exit 42"], 42),
        (["sh", "-c", "no-such-command"], 127),
    ],
)
def test_exit_codes_propagate_to_kubectl(
    scanner_kubeconfig: Path, command: list[str], exit_code: int
) -> None:
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", *command)

    assert result.returncode == exit_code, result.stderr
    if exit_code:
        assert f"command terminated with exit code {exit_code}" in result.stderr


def test_stdout_and_stderr_arrive_separately(scanner_kubeconfig: Path) -> None:
    script = "echo out; echo err >&2; cat /etc/missing"
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "sh", "-c", script)

    assert result.returncode == 1
    assert result.stdout == "out\n"
    assert result.stderr.splitlines() == [
        "err",
        "cat: /etc/missing: No such file or directory",
        "command terminated with exit code 1",
    ]


def test_stdin_reaches_cat(scanner_kubeconfig: Path) -> None:
    # kubectl -i sends stdin on channel 0 and half-closes it (v5 close frame) at end of input.
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "cat", stdin="one\ntwo\n")
    counted = exec_in(
        scanner_kubeconfig, "web-0", "-c", "app", "--", "sh", "-c", "grep -c o", stdin="one\ntwo\n"
    )

    assert (result.returncode, result.stdout) == (0, "one\ntwo\n"), result.stderr
    assert counted.stdout == "2\n"


def test_kubectl_picks_the_default_container_itself(scanner_kubeconfig: Path) -> None:
    # The apiserver needs `container` for a two-container pod; kubectl chooses the first one.
    result = exec_in(scanner_kubeconfig, "web-0", "--", "hostname")

    assert result.stdout == "web-0\n"
    assert 'Defaulted container "app" out of: app, scanner' in result.stderr


def test_exec_into_another_pod_is_forbidden(
    kubesim_tls: KubesimHandle, scanner_kubeconfig: Path
) -> None:
    result = exec_in(scanner_kubeconfig, "web-1", "-c", "app", "--", "true")

    assert result.returncode == 1
    # kubectl reads web-1 first (pods get is granted for web-0 only).
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods "web-1" is forbidden: User '
        '"system:serviceaccount:scangate-grants:scanner" cannot get resource "pods" in API group '
        '"" in the namespace "payments"'
    )
    assert exec_requests(kubesim_tls) == []


def test_exec_is_forbidden_when_only_the_pod_can_be_read(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    token = grant_exec_profile(kubesim_tls, ["web-0"])
    kubesim_tls.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "scanner", "namespace": "payments"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
    )
    kubeconfig = kubesim_tls.token_kubeconfig(token, tmp_path / "kc", "payments")

    result = exec_in(kubeconfig, "web-1", "-c", "app", "--", "true")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods "web-1" is forbidden: User '
        '"system:serviceaccount:scangate-grants:scanner" cannot create resource "pods/exec" in '
        'API group "" in the namespace "payments"'
    )
    # The WebSocket GET is refused as `get`, kubectl's SPDY retry as `create`.
    assert exec_requests(kubesim_tls) == [("GET", "web-1", 403), ("POST", "web-1", 403)]


def test_exec_after_the_service_account_is_deleted_is_unauthorized_once_the_cache_expires(
    kubesim_tls: KubesimHandle, scanner_kubeconfig: Path
) -> None:
    assert exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "true").returncode == 0
    with kubesim_tls.admin_client() as api:
        client.CoreV1Api(api).delete_namespaced_service_account("scanner", "scangate-grants")

    # The token authenticated moments ago: the apiserver's cache still vouches for it.
    assert exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "true").returncode == 0
    kubesim_tls.advance_clock(kubesim_tls.token_cache_ttl_seconds)
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "true")

    assert result.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr


def test_exec_after_the_role_binding_is_deleted_is_forbidden_at_once(
    kubesim_tls: KubesimHandle, scanner_kubeconfig: Path
) -> None:
    assert exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "true").returncode == 0
    with kubesim_tls.admin_client() as api:
        client.RbacAuthorizationV1Api(api).delete_namespaced_role_binding("scanner", "payments")

    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "true")

    assert result.returncode == 1
    assert result.stderr.startswith('Error from server (Forbidden): pods "web-0" is forbidden')


def _kubeconfig_with_exec_verbs(handle: KubesimHandle, path: Path, verbs: list[str]) -> Path:
    token = grant_exec_profile(handle, ["web-0"])
    handle.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "scanner", "namespace": "payments"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods/exec"], "verbs": verbs},
            ],
        }
    )
    return handle.token_kubeconfig(token, path, "payments")


def test_get_and_create_on_pods_exec_work_on_every_release(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig_with_exec_verbs(kubesim_tls, tmp_path / "kc", ["get", "create"])

    result = exec_in(kubeconfig, "web-0", "-c", "app", "--", "id", "-un")

    assert (result.returncode, result.stdout) == (0, "root\n"), result.stderr
    assert exec_requests(kubesim_tls) == [("GET", "web-0", 101)]


def test_get_alone_on_pods_exec_works_only_before_1_35(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig_with_exec_verbs(kubesim_tls, tmp_path / "kc", ["get"])

    result = exec_in(kubeconfig, "web-0", "-c", "app", "--", "id", "-un")

    if kubesim_tls.kube_version != "1.35":
        assert (result.returncode, result.stdout) == (0, "root\n"), result.stderr
        assert exec_requests(kubesim_tls) == [("GET", "web-0", 101)]
        return
    # 1.35 refuses the WebSocket in the connect handler (no `create`); kubectl's SPDY retry
    # is a `create` and refused by the request filter, which is what kubectl prints.
    assert result.returncode == 1
    assert 'cannot create resource "pods/exec"' in result.stderr
    assert exec_requests(kubesim_tls) == [("GET", "web-0", 403), ("POST", "web-0", 403)]


def test_create_alone_on_pods_exec_never_opens_the_websocket(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig_with_exec_verbs(kubesim_tls, tmp_path / "kc", ["create"])

    result = exec_in(kubeconfig, "web-0", "-c", "app", "--", "id", "-un")

    # The GET is refused as `get` on every release. A real cluster would then serve kubectl's
    # SPDY retry (a POST, authorized as `create`); kubesim authorizes it the same way and
    # answers that it has no SPDY (README: a difference from kube-apiserver).
    assert result.returncode == 1
    assert "SPDY is not implemented" in result.stderr
    assert exec_requests(kubesim_tls) == [("GET", "web-0", 403), ("POST", "web-0", 501)]


def test_unknown_container_is_the_apiservers_bad_request(scanner_kubeconfig: Path) -> None:
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "nope", "--", "true")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error from server (BadRequest): container nope is not valid for pod web-0"
    )


def test_a_missing_program_is_the_runtimes_error_not_an_exit_code(
    scanner_kubeconfig: Path,
) -> None:
    result = exec_in(scanner_kubeconfig, "web-0", "-c", "app", "--", "nmap", "-sV")

    assert result.returncode == 1
    assert result.stderr.startswith("error: Internal error occurred: error executing command")
    assert 'exec: "nmap": executable file not found in $PATH' in result.stderr


def test_exec_into_a_pod_that_is_not_running_finds_no_container(
    kubesim_tls: KubesimHandle,
) -> None:
    result = kubectl(kubesim_tls.admin_kubeconfig, "exec", "web-2", "-n", "payments", "--", "true")

    assert result.returncode == 1
    assert 'container not found ("app")' in result.stderr


def test_files_annotations_shape_each_container(kubesim_tls: KubesimHandle) -> None:
    kubesim_tls.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "shaped",
                "namespace": "payments",
                "annotations": {
                    "kubesim.dev/files": (
                        "/etc/app/config.yaml: |\n  debug: false\n"
                        "/etc/app/key.pem: {content: secret, mode: '0600'}\n"
                    ),
                    # The distroless container: no shell, no coreutils.
                    "kubesim.dev/files.distroless": "/bin/: null\n",
                },
            },
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:1"},
                    {"name": "distroless", "image": "gcr.io/distroless/static"},
                ],
                "securityContext": {"runAsUser": 65534},
            },
            "status": {"phase": "Running"},
        }
    )
    admin = kubesim_tls.admin_kubeconfig

    script = "ls /etc/app; cat /etc/app/config.yaml; cat /etc/app/key.pem"
    listing = kubectl(
        admin, "exec", "shaped", "-n", "payments", "-c", "app", "--", "sh", "-c", script
    )
    identity = kubectl(admin, "exec", "shaped", "-n", "payments", "-c", "app", "--", "id")
    no_shell = kubectl(admin, "exec", "shaped", "-n", "payments", "-c", "distroless", "--", "sh")

    assert listing.stdout == "config.yaml\nkey.pem\ndebug: false\n"
    assert "cat: /etc/app/key.pem: Permission denied" in listing.stderr
    assert identity.stdout == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    assert 'exec: "sh": executable file not found in $PATH' in no_shell.stderr

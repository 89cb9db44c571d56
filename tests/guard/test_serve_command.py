"""`scangate serve` as operators run it: the REST API over HTTPS and the grant guard's
listener on its own port and certificate, in one process that SIGTERM stops cleanly; the
`scangate` client verifying the API with `--ca-file` / `SCANGATE_CA_FILE`."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.auth import generate_api_key, hash_api_key
from tests.guard.admission_reviews import connect_review
from tests.support.guard import TlsFiles

SCANGATE = str(Path(sys.executable).with_name("scangate"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(url: str, verify: Any, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.1)


def test_serve_runs_the_api_over_https_and_the_guard_beside_it(
    tmp_path: Path, tls_files: TlsFiles, kubesim: Any
) -> None:
    key = generate_api_key()[0]
    api_port, guard_port = _free_port(), _free_port()
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{tmp_path / 'scangate.db'}",
                "clusters": [{"name": "default", "kubeconfig": str(kubesim.admin_kubeconfig)}],
                "api_keys": [{"name": "alice", "sha256": hash_api_key(key)}],
                "api_tls": {
                    "cert_file": str(tls_files.cert_file),
                    "key_file": str(tls_files.key_file),
                },
                "guard": {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": guard_port,
                    "cert_file": str(tls_files.cert_file),
                    "key_file": str(tls_files.key_file),
                },
                "reaper": {"enabled": False},
            }
        )
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls_files.ca_pem)
    verify = ssl.create_default_context(cafile=str(ca_file))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
    process = subprocess.Popen(
        [SCANGATE, "--config", str(config), "serve", "--port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_serving(f"https://localhost:{api_port}/healthz", verify, process)
        _wait_until_serving(f"https://localhost:{guard_port}/healthz", verify, process)

        # The API speaks only TLS now, and the guard answers AdmissionReviews on its port.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://localhost:{api_port}/healthz", timeout=5)
        review = connect_review("exec", "kubernetes-admin")
        answer = httpx.post(
            f"https://localhost:{guard_port}/admission/default", json=review, verify=verify
        ).json()
        assert answer["response"] == {"uid": review["request"]["uid"], "allowed": True}
        # ... while the API port has no admission route and the guard port no API.
        admission_on_api = httpx.post(
            f"https://localhost:{api_port}/admission/default", json=review, verify=verify
        )
        assert admission_on_api.status_code == 404
        assert (
            httpx.get(f"https://localhost:{guard_port}/v1/whoami", verify=verify).status_code == 404
        )

        client_env = {**env, "SCANGATE_TOKEN": key, "SCANGATE_URL": f"https://localhost:{api_port}"}
        trusted = subprocess.run(
            [SCANGATE, "whoami", "--ca-file", str(ca_file)],
            env=client_env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert trusted.returncode == 0, trusted.stderr
        assert "apikey:alice" in trusted.stdout
        from_env = subprocess.run(
            [SCANGATE, "whoami"], env={**client_env, "SCANGATE_CA_FILE": str(ca_file)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert from_env.returncode == 0, from_env.stderr
        untrusted = subprocess.run(
            [SCANGATE, "whoami"], env=client_env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert untrusted.returncode == 7, untrusted.stderr  # unavailable: TLS not trusted
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    # SIGTERM stops both servers and the process exits cleanly.
    assert process.returncode == 0, stderr

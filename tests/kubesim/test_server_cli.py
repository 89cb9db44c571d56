"""`python -m kubesim`: the command line other processes and scripts start it with."""

from __future__ import annotations

import base64
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from kubesim.process import KubesimProcess


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "--port", "0", "--admin-token", "admin-t", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("kubesim listening on "), process.stderr.read() if process.stderr else ""
    return process, line.removeprefix("kubesim listening on ").strip()


def test_prints_url_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team, labels: {a: b}}\n"
        "spec: {containers: [{name: c, image: busybox}]}\nstatus: {phase: Running}\n"
    )
    kubeconfig = tmp_path / "admin.kubeconfig"
    process, url = _start("--seed", str(seed), "--write-kubeconfig", str(kubeconfig))
    try:
        response = httpx.get(
            f"{url}/api/v1/namespaces/team/pods/p", headers={"Authorization": "Bearer admin-t"}
        )
        config = yaml.safe_load(kubeconfig.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert response.json()["status"]["phase"] == "Running"
    assert config["clusters"][0]["cluster"] == {"server": url}
    assert config["users"][0]["user"] == {"token": "admin-t"}
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert returncode == 0


def test_tls_kubeconfig_carries_the_ca(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "admin.kubeconfig"
    process, url = _start("--tls", "--write-kubeconfig", str(kubeconfig))
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        ca_data = config["clusters"][0]["cluster"]["certificate-authority-data"]
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(base64.b64decode(ca_data))
        response = httpx.get(
            f"{url}/version",
            headers={"Authorization": "Bearer admin-t"},
            verify=ssl.create_default_context(cafile=str(ca_file)),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert url.startswith("https://")
    assert response.json()["gitVersion"].startswith("v1.")
    assert "insecure-skip-tls-verify" not in config["clusters"][0]["cluster"]


def test_latency_flag_slows_every_request(tmp_path: Path) -> None:
    process, url = _start("--latency-ms", "100")
    try:
        with httpx.Client(headers={"Authorization": "Bearer admin-t"}) as http:
            http.get(f"{url}/version")
            started = time.perf_counter()
            http.get(f"{url}/version")
            elapsed = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert elapsed >= 0.1


def test_bad_seed_fails_fast_with_a_message(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Not_Valid, namespace: x}\n")

    result = subprocess.run(
        [sys.executable, "-m", "kubesim", "--admin-token", "t", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "bad --seed" in result.stderr
    assert 'Pod "Not_Valid" is invalid' in result.stderr


def test_admin_token_starting_with_a_dash_is_accepted(tmp_path: Path) -> None:
    process = KubesimProcess(tmp_path, admin_token="-starts-with-dash")
    process.start()
    try:
        response = httpx.get(
            f"{process.url}/version", headers={"Authorization": "Bearer -starts-with-dash"}
        )
    finally:
        process.stop()

    assert response.status_code == 200

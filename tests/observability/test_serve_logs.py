"""`scangate serve` writes JSON lines by default and text with `log_format: text`: the server's
own lines and one access record per request, never uvicorn's access log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.auth import generate_api_key
from app.db.engine import run_migrations
from kubesim.pytest_plugin import KubesimHandle

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_and_call(
    tmp_path: Path,
    kubesim: KubesimHandle,
    log_format: str | None,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Start `scangate serve` (with `extra` configuration), call it as an authenticated client
    (sending `headers` too), stop it; (stderr, key)."""
    database_url = f"sqlite:///{tmp_path / 'scangate.db'}"
    run_migrations(database_url)
    key, digest = generate_api_key()
    document: dict[str, Any] = {
        "database_url": database_url,
        "clusters": [{"name": "default", "kubeconfig": str(kubesim.admin_kubeconfig)}],
        "api_keys": [{"name": "ci", "sha256": digest}],
        "reaper": {"enabled": False},
    }
    if log_format is not None:
        document["log_format"] = log_format
    document.update(extra or {})
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump(document))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--config", str(config), "serve", "--no-migrate",
         "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        response = httpx.get(
            f"{base}/v1/whoami",
            headers={
                "Authorization": f"Bearer {key}",
                "X-Request-ID": "serve-test-1",
                **(headers or {}),
            },
        )
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    return stderr, key


def test_serve_writes_json_lines_with_one_access_record(
    tmp_path: Path, kubesim: KubesimHandle
) -> None:
    stderr, key = serve_and_call(tmp_path, kubesim, None)

    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON, uvicorn's too
    access = [r for r in records if r["logger"] == "scangate.access"]
    whoami = [r for r in access if r["http"]["route"] == "/v1/whoami"]
    assert len(whoami) == 1
    assert whoami[0]["request_id"] == "serve-test-1"
    assert whoami[0]["principal"] == "apikey:ci"
    assert any(r["logger"].startswith("uvicorn") for r in records)
    assert not any(r["logger"] == "uvicorn.access" for r in records)
    assert key not in stderr


def test_serve_writes_text_when_configured(tmp_path: Path, kubesim: KubesimHandle) -> None:
    stderr, key = serve_and_call(tmp_path, kubesim, "text")

    access = [line for line in stderr.splitlines() if " scangate.access " in line]
    assert any("[req serve-test-1] GET /v1/whoami 200" in line for line in access)
    assert not stderr.lstrip().startswith("{")
    assert key not in stderr


@pytest.mark.parametrize("bad", ["xml", ""])
def test_an_unknown_log_format_stops_startup_naming_the_key(tmp_path: Path, bad: str) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump({"log_format": bad}))

    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "--config", str(config), "serve", "--no-migrate"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    assert "log_format" in result.stderr


def _access_record(stderr: str) -> dict[str, Any]:
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    [record] = [
        r for r in records
        if r["logger"] == "scangate.access" and r["http"]["route"] == "/v1/whoami"
    ]  # fmt: skip
    return record


def test_serve_ignores_x_forwarded_for_unless_the_proxy_is_trusted(
    tmp_path: Path, kubesim: KubesimHandle
) -> None:
    # The test client connects from 127.0.0.1, which uvicorn would trust by default.
    forged = {"X-Forwarded-For": "203.0.113.7"}
    stderr, _ = serve_and_call(tmp_path / "untrusted", kubesim, None, headers=forged)
    assert _access_record(stderr)["client"] == "127.0.0.1"

    stderr, _ = serve_and_call(
        tmp_path / "trusted", kubesim, None, headers=forged,
        extra={"trusted_proxies": ["127.0.0.0/8"]},
    )  # fmt: skip
    assert _access_record(stderr)["client"] == "203.0.113.7"

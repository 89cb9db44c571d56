"""`scangate serve` and `scangate init` for someone setting scangate up for the first time.

Run as a user runs them (a separate process in an empty directory, without SCANGATE_*
variables): a missing configuration names the file looked for and how to create one, and
creates nothing; a credential problem is one clear line, not a traceback; `scangate init`
writes a commented configuration that `scangate serve` starts with against a real (simulated)
cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle

REPO = Path(__file__).resolve().parents[2]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
    env["PYTHONPATH"] = str(REPO)
    env["KUBECONFIG"] = "/nonexistent/kubeconfig"  # never the developer's own cluster
    env.update(extra)
    return env


def _scangate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_without_a_configuration_names_the_file_and_how_to_create_it(
    tmp_path: Path,
) -> None:
    result = _scangate(tmp_path, "serve", "--port", str(_free_port()))

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"scangate: error: no configuration file: looked for {tmp_path / 'scangate.yaml'}"
    )
    assert "`scangate init`" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no scangate.db, nothing


def test_serve_with_a_missing_config_flag_names_that_file(tmp_path: Path) -> None:
    result = _scangate(tmp_path, "--config", "etc/scangate.yaml", "serve")

    assert result.returncode == 2
    assert f"looked for {tmp_path / 'etc' / 'scangate.yaml'} (--config)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_in_cluster_credentials_outside_a_pod_are_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'scangate.db'}\n")

    result = _scangate(tmp_path, "serve", "--port", str(_free_port()))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'scangate: error: cluster "default": cannot load credentials from in-cluster service '
        "account: ConfigException",
        f"  hint: outside a Kubernetes pod, set clusters[0].kubeconfig in {config.name}",
    ]
    assert not (tmp_path / "scangate.db").exists()  # checked before migrating


def test_init_writes_a_commented_configuration_that_serves(
    tmp_path: Path, kubesim: KubesimHandle
) -> None:
    written = _scangate(tmp_path, "init", "--kubeconfig", str(kubesim.admin_kubeconfig))
    assert written.returncode == 0, written.stderr
    config = tmp_path / "scangate.yaml"
    text = config.read_text()
    assert text.count("\n#") > 10  # commented for the reader
    settings = load_settings(config)
    assert settings.clusters[0].kubeconfig == str(kubesim.admin_kubeconfig.resolve())
    assert settings.database_url == f"sqlite:///{tmp_path / 'scangate.db'}"
    assert settings.policies == []  # denies everything until a policy is added

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = None
        deadline = time.monotonic() + 30
        while ready is None and time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, server.stderr.read() if server.stderr else ""
        assert ready.status_code == 200, ready.text
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text("database_url: sqlite:///mine.db\n")

    refused = _scangate(tmp_path, "init")
    replaced = _scangate(tmp_path, "init", "--force")

    assert refused.returncode == 2
    assert "exists; it was left as it is" in refused.stderr
    assert replaced.returncode == 0, replaced.stderr
    document = yaml.safe_load(config.read_text())
    assert document["database_url"] != "sqlite:///mine.db"
    assert "kubeconfig" not in document["clusters"][0]  # none found: in-cluster, commented


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    closed_port = _free_port()
    url = f"postgresql+psycopg://scangate:hunter2-not-shown@127.0.0.1:{closed_port}/scangate"
    config.write_text(yaml.safe_dump({"database_url": url}))

    result = _scangate(tmp_path, "migrate")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        "scangate: error: cannot reach the database "
        f"postgresql+psycopg://scangate:***@127.0.0.1:{closed_port}/scangate (OperationalError)",
        "  hint: start it, or check database_url in scangate.yaml / SCANGATE_DATABASE_URL",
    ]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_migrate_and_reap_without_a_configuration_create_nothing(tmp_path: Path) -> None:
    for command in (["migrate"], ["reap", "--once"]):
        result = _scangate(tmp_path, *command)

        assert result.returncode == 2, command
        assert "no configuration file: looked for" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_configuration_from_the_environment_alone_is_accepted(tmp_path: Path) -> None:
    # The Helm chart and other deployments may configure everything through SCANGATE_*.
    database = tmp_path / "data" / "scangate.db"
    env = _environment(SCANGATE_DATABASE_URL=f"sqlite:///{database}")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert database.exists()

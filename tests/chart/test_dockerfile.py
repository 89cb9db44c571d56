"""The container image, checked without a container daemon: the Dockerfile is parsed and its
stages, user, entrypoint and inputs are asserted on (nothing here can build it); its command
and HEALTHCHECK are run as processes with the image's environment, and its usage comment is
checked to describe a run that works outside a cluster."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.chart.helm_runner import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "clang", "libc6-dev", "python3-dev")
SECRET_PATTERNS = (".env", "*.db", "*.sqlite*", "*.pem", "*.key", "*kubeconfig*", "secret*")


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON-array ("exec") form; fails the test if the shell form was used."""
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list), f"{self.keyword} must use the exec (JSON) form"
        return [str(part) for part in parsed]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages (line continuations joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            parts = arguments.split()
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), parts[0]
            )
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            if keyword == "ARG" and "=" in arguments:
                key, _, value = arguments.partition("=")
                global_args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_image_is_multi_stage_on_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base == "python:3.11-slim" for stage in stages)
    assert stages[0].name == "builder"


def test_wheels_are_built_in_the_builder_and_only_its_output_reaches_the_final_stage(
    stages: list[Stage], final: Stage
) -> None:
    builder_runs = " ".join(i.arguments for i in stages[0].all("RUN"))
    assert "pip wheel" in builder_runs
    for copy in final.all("COPY"):
        assert copy.arguments.startswith("--from=builder"), copy.arguments


def test_final_stage_installs_no_build_tools(final: Stage) -> None:
    commands = " ".join(i.arguments for i in final.all("RUN"))
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", commands), tool
    assert "apt-get install" not in commands
    assert "pip install" not in commands


def test_final_stage_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage must set USER"
    user, _, group = users[-1].arguments.partition(":")
    # Kubernetes' runAsNonRoot can only verify numeric ids.
    assert user.isdigit()
    assert int(user) > 0
    assert not group or (group.isdigit() and int(group) > 0)


def test_entrypoint_is_scangate_serving_on_all_interfaces(final: Stage) -> None:
    assert final.all("ENTRYPOINT")[-1].exec_form() == ["scangate"]
    # No --port: `scangate serve` listens on $SCANGATE_PORT, which the HEALTHCHECK reads too.
    assert final.all("CMD")[-1].exec_form() == ["serve", "--host", "0.0.0.0"]
    assert _image_env(final)["SCANGATE_PORT"] == "8080"
    assert "8080" in " ".join(i.arguments for i in final.all("EXPOSE"))


def test_healthcheck_probes_healthz_with_python_not_curl(final: Stage) -> None:
    healthchecks = final.all("HEALTHCHECK")
    assert len(healthchecks) == 1
    check = healthchecks[0].arguments
    command = json.loads(check[check.index("CMD") + len("CMD") :].strip())
    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert "curl" not in check
    assert "wget" not in check


def test_no_secrets_databases_or_env_files_are_copied(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            sources = [s for s in shlex.split(instruction.arguments) if not s.startswith("--")]
            for source in sources[:-1]:
                name = Path(source.rstrip("/")).name
                assert not any(fnmatch.fnmatch(name, p) for p in SECRET_PATTERNS), source
        assert not stage.all("ADD"), "ADD can fetch URLs and unpack archives: use COPY"
        for instruction in stage.all("ENV") + stage.all("ARG"):
            assert not re.search(r"(PASSWORD|TOKEN|SECRET|API_KEY)", instruction.arguments, re.I), (
                instruction.arguments
            )


def test_migrations_ship_with_the_image(stages: list[Stage], final: Stage) -> None:
    copied = " ".join(i.arguments for s in stages for i in s.all("COPY"))
    assert "migrations/" in copied
    env = " ".join(i.arguments for i in final.all("ENV"))
    assert "SCANGATE_MIGRATIONS_DIR=" in env


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns
    )


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = _dockerignore_patterns()
    for path in (".venv", ".git", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"):
        assert _ignored(path, patterns), path
    for path in ("scangate.db", ".env", ".env.production", "app/__pycache__", "admin.kubeconfig"):
        assert _ignored(path, patterns), path


def test_every_file_the_build_copies_exists_in_the_build_context(stages: list[Stage]) -> None:
    patterns = _dockerignore_patterns()
    for stage in stages:
        for copy in stage.all("COPY"):
            if "--from=" in copy.arguments:
                continue
            for source in shlex.split(copy.arguments)[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY source {source} is missing"
                assert not _ignored(source.rstrip("/"), patterns), f"{source} is .dockerignored"


def _image_env(final: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        for assignment in shlex.split(instruction.arguments):
            key, _, value = assignment.partition("=")
            env[key] = value
    return env


def _healthcheck_command(final: Stage) -> list[str]:
    check = final.all("HEALTHCHECK")[0].arguments
    command: list[str] = json.loads(check[check.index("CMD") + len("CMD") :].strip())
    return [sys.executable, *command[1:]] if command[0] == "python" else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthcheck_follows_the_configured_port(
    final: Stage, tmp_path: Path, kubesim: KubesimHandle
) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{tmp_path / 'scangate.db'}",
                "clusters": [{"name": "default", "kubeconfig": str(kubesim.admin_kubeconfig)}],
            }
        )
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
    env.update(_image_env(final))
    env.update(SCANGATE_CONFIG=str(config), SCANGATE_PORT=str(port), PYTHONPATH=str(REPO_ROOT))
    env.pop("SCANGATE_MIGRATIONS_DIR")  # the image's path; here the repository's migrations
    command = [sys.executable, "-m", "app.cli", *final.all("CMD")[-1].exec_form()]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:

        def healthcheck(on_port: int) -> int:
            probe_env = {**env, "SCANGATE_PORT": str(on_port)}
            return subprocess.run(
                _healthcheck_command(final), env=probe_env, capture_output=True, timeout=30
            ).returncode

        deadline = time.monotonic() + 30
        while healthcheck(port) != 0 and time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.2)

        assert healthcheck(port) == 0
        assert healthcheck(_free_port()) != 0  # nothing listens there: unhealthy
    finally:
        server.terminate()
        server.wait(timeout=15)


def _usage_comment() -> list[str]:
    """The shell commands in the Dockerfile's leading usage comment (`#   command`)."""
    commands: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not raw.startswith("#   "):
            continue
        line = raw.removeprefix("#   ").split("   #", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        commands.append(pending + line)
        pending = ""
    return commands


def test_usage_comment_shows_a_run_that_works_outside_a_cluster(
    final: Stage, tmp_path: Path
) -> None:
    commands = _usage_comment()
    (run,) = [shlex.split(c) for c in commands if c.startswith("docker run ")]
    mounts = dict(reversed(run[i + 1].split(":")[:2]) for i, word in enumerate(run) if word == "-v")
    env = _image_env(final)
    workdir = final.all("WORKDIR")[-1].arguments

    # The configuration the comment writes, run as written: its cluster's kubeconfig is a
    # mounted file, so scangate never falls back to in-cluster credentials.
    (write_config,) = [c for c in commands if c.startswith("printf ")]
    subprocess.run(["bash", "-c", write_config], cwd=tmp_path, check=True)
    settings = load_settings(tmp_path / "scangate.yaml")
    kubeconfig = settings.clusters[0].kubeconfig
    assert kubeconfig is not None
    assert mounts[kubeconfig].endswith("/scangate.kubeconfig")
    assert any("kubectl config view --raw --minify --flatten" in c for c in commands)
    assert mounts[env["SCANGATE_CONFIG"]].endswith("/scangate.yaml")
    assert mounts[workdir].endswith("/data")  # the SQLite database outlives the container
    assert "--user" in run  # so the container can read the mounted files

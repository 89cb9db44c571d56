"""The pipeline examples in `examples/`: valid YAML, the CI features they rely on, and every
`scangate ...` command they run accepted by the real CLI parser (so a renamed flag breaks this
test, not someone's pipeline)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import build_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_SEPARATORS = {";", "&&", "||", "|", "then", "do", "else", "(", ")", "{", "}"}


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLES / name).read_text())
    assert isinstance(document, dict)
    return document


def shell_scripts(node: Any) -> Iterator[str]:
    """Every shell script in a workflow: GitHub `run:` values and GitLab script lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value
            elif key in ("script", "before_script", "after_script"):
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from shell_scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from shell_scripts(item)


def scangate_invocations(script: str) -> Iterator[list[str]]:
    """The argument lists of `scangate` commands in a script, however they are chained."""
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word in _SEPARATORS:
                if command[:1] == ["scangate"]:
                    yield command[1:]
                command = []
            else:
                command.append(word)


def invocations(name: str) -> list[list[str]]:
    return [argv for script in shell_scripts(load(name)) for argv in scangate_invocations(script)]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_every_scangate_command_in_the_example_parses(name: str) -> None:
    found = invocations(name)

    commands = {" ".join(argv[:2]) if argv[0] == "grant" else argv[0] for argv in found}
    assert {"run", "grant revoke", "whoami"} <= commands
    for argv in found:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # argparse's way of saying "usage error"
            pytest.fail(f"{name}: `scangate {shlex.join(argv)}` is not a valid command")
        assert args.handler.__module__.startswith("app.client"), argv


def test_run_commands_scan_with_cinc_auditor_and_train_k8s_container() -> None:
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        for argv in invocations(name):
            if argv[0] != "run":
                continue
            args = build_parser().parse_args(argv)
            command = " ".join(args.command)
            assert "cinc-auditor exec" in command, name
            assert "k8s-container://" in command, name
            assert args.scanner == "exec"
            assert args.ttl is not None, "examples set a TTL close to the scan's length"


def test_github_workflow_uses_an_oidc_token_for_scangate_and_always_revokes() -> None:
    workflow = load("github-actions.yml")
    steps = workflow["jobs"]["scan"]["steps"]

    assert workflow["permissions"]["id-token"] == "write"
    token_command = workflow["env"]["SCANGATE_TOKEN_COMMAND"]
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in token_command
    assert "audience=scangate" in token_command
    assert "SCANGATE_TOKEN" not in workflow["env"]  # no stored secret
    revoke_steps = [s for s in steps if "scangate grant revoke" in s.get("run", "")]
    assert revoke_steps
    assert all(s.get("if") == "always()" for s in revoke_steps)
    assert "secrets." not in (EXAMPLES / "github-actions.yml").read_text()


def test_gitlab_job_gets_its_token_from_id_tokens_and_always_revokes() -> None:
    job = load("gitlab-ci.yml")["container-compliance-scan"]

    assert job["id_tokens"] == {"SCANGATE_TOKEN": {"aud": "scangate"}}
    assert any("scangate grant revoke" in line for line in job["after_script"])


# ---- installing the client: a pinned release of this repository, never a name on an index ----

REPO = EXAMPLES.parent
_PINNED_WHEEL = re.compile(r'"scangate @ (?P<url>[^"#]+)#sha256=(?P<sha256>[^"]+)"')


def _install_lines(text: str, *, markdown: bool = False) -> list[str]:
    """Commands that install the client: YAML outside comments, Markdown in code blocks."""
    if markdown:
        text = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL))
    return [
        line
        for line in text.replace("\\\n", " ").splitlines()
        if not line.lstrip().startswith("#")
        and re.search(r"\b(pipx?|pip3)\"? install\b", line)
        and "scangate" in line.split("install", 1)[1].split(" #", 1)[0]
    ]


@pytest.mark.parametrize(
    "document", ["examples/github-actions.yml", "examples/gitlab-ci.yml", "examples/README.md"]
)
def test_the_client_is_installed_only_as_a_wheel_pinned_by_its_sha256(document: str) -> None:
    lines = _install_lines((REPO / document).read_text(), markdown=document.endswith(".md"))

    assert lines, f"{document} shows no way to install the client"
    for line in lines:
        assert _PINNED_WHEEL.search(line), f"{document}: not a pinned release: {line.strip()}"


def test_readme_never_installs_scangate_by_bare_name() -> None:
    for line in _install_lines((REPO / "README.md").read_text(), markdown=True):
        assert _PINNED_WHEEL.search(line), line.strip()


@pytest.fixture(scope="module")
def release_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel and sha256 the release process (`make dist`) produces."""
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        ["make", "-o", ".venv/.installed", "dist", f"DIST={dist}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("scangate-*.whl")
    recorded = (dist / "SHA256SUMS").read_text().split()
    assert recorded[1] == wheel.name
    assert recorded[0] in built.stdout  # printed for the person publishing the release
    return wheel, recorded[0]


def _pip_fetch(requirement: str, destination: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-index", "--quiet",
         "--dest", str(destination), requirement],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_example_install_takes_the_release_wheel_and_refuses_any_other_file(
    name: str, release_wheel: tuple[Path, str], tmp_path: Path
) -> None:
    wheel, sha256 = release_wheel
    (line,) = _install_lines((EXAMPLES / name).read_text())
    quoted = _PINNED_WHEEL.search(line)
    assert quoted is not None
    requirement = quoted.group(0).strip('"')

    def fetch(url: str, digest: str, into: str) -> subprocess.CompletedProcess[str]:
        # The example's own variables, as the CI system would set them.
        expanded = requirement
        for variable, value in (("SCANGATE_WHEEL_SHA256", digest), ("SCANGATE_WHEEL", url)):
            expanded = expanded.replace("${" + variable + "}", value).replace("$" + variable, value)
        return _pip_fetch(expanded, tmp_path / into)

    accepted = fetch(wheel.as_uri(), sha256, "good")
    tampered = tmp_path / wheel.name
    tampered.write_bytes(wheel.read_bytes() + b"\0")
    refused = fetch(tampered.as_uri(), sha256, "bad")

    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "good" / wheel.name).read_bytes() == wheel.read_bytes()
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())

"""The pipeline examples in `examples/`: valid YAML, the CI features they rely on, and every
`scangate ...` command they run accepted by the real CLI parser (so a renamed flag breaks this
test, not someone's pipeline)."""

from __future__ import annotations

import shlex
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

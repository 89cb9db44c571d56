"""The simulated userland behind exec: programs, the shell and the per-pod filesystem, with the
outputs, messages and exit statuses a Debian container gives (dash as /bin/sh, GNU coreutils
and grep). Run in-process: these are the semantics; the wire is tested in test_exec_stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubesim.userland import (
    BufferOutput,
    BytesInput,
    CommandNotFound,
    FilesAnnotationError,
    container_for_pod,
    run_command,
)

FILES = """\
/etc/nginx/nginx.conf: |
  user nginx;
  server_tokens off;
  # PermitRootLogin yes (a comment, not a setting)
/etc/ssl/private/key.pem: {content: "-----BEGIN KEY-----\\n", mode: "0600"}
/opt/app/: {mode: "0750", owner: app, group: app}
/usr/local/bin/healthcheck: {content: "#!/bin/sh\\necho healthy $1\\nexit 4\\n", mode: "0755"}
/etc/passwd: |
  root:x:0:0:root:/root:/usr/sbin/nologin
  app:x:1000:1000:app:/home/app:/bin/sh
/etc/group: |
  root:x:0:
  app:x:1000:
"""


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-0", "namespace": "payments", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "web:1"}], **spec},
    }


def run(argv: list[str], stdin: bytes = b"", **pod_args: Any) -> tuple[int, str, str]:
    container = container_for_pod(pod(**pod_args), "app")
    out, err = BufferOutput(), BufferOutput()
    code = asyncio.run(run_command(container, argv, BytesInput(stdin), out, err))
    return code, out.data.decode(), err.data.decode()


def sh(script: str, stdin: bytes = b"", **pod_args: Any) -> tuple[int, str, str]:
    return run(["sh", "-c", script], stdin, **pod_args)


SHELL_CASES: list[tuple[str, tuple[int, str, str]]] = [
    ("exit 3", (3, "", "")),
    ("true && echo yes || echo no", (0, "yes\n", "")),
    ("false && echo yes || echo no", (0, "no\n", "")),
    ("false; echo $?", (0, "1\n", "")),
    ("nope", (127, "", "sh: 1: nope: not found\n")),
    ("echo one\nnope", (127, "one\n", "sh: 2: nope: not found\n")),
    (
        "echo 'single $HOME' \"double $HOME\" back\\ slash",
        (0, "single $HOME double /root back slash\n", ""),
    ),
    ('echo "a""b"\'c\' "" end', (0, "abc  end\n", "")),
    ("echo $UNSET x", (0, "x\n", "")),
    ("X=1; echo $X ${X}2", (0, "1 12\n", "")),
    (
        "echo $(hostname)",
        (2, "", "sh: 1: command substitution is not supported by kubesim's shell\n"),
    ),
    (
        "echo `uname`",
        (2, "", "sh: 1: command substitution is not supported by kubesim's shell\n"),
    ),
    ("cat /etc/passwd | grep -c nologin", (0, "1\n", "")),
    ("! test -e /etc/ssh/sshd_config && echo absent", (0, "absent\n", "")),
    ("( exit 5 ); echo $?", (0, "5\n", "")),
    ("{ echo a; echo b; } | grep b", (0, "b\n", "")),
    ("exit 2 | true; echo still here", (0, "still here\n", "")),
    ("cat /etc/nginx/nginx.conf | grep -n user", (0, "1:user nginx;\n", "")),
    ("cd /etc", (127, "", "sh: 1: cd: not found\n")),  # not simulated
    ("echo err >&2; echo out 2>/dev/null", (0, "out\n", "err\n")),
    ("cat /nope 2>&1", (1, "cat: /nope: No such file or directory\n", "")),
    ("cat < /etc/hostname", (0, "web-0\n", "")),
    ("echo x > /tmp/file", (2, "", "sh: 1: cannot create /tmp/file: Read-only file system\n")),
    ("echo x > /nope/file", (2, "", "sh: 1: cannot create /nope/file: Directory nonexistent\n")),
    ("echo 'open", (2, "", "sh: 1: Syntax error: Unterminated quoted string\n")),
    ("&& true", (2, "", 'sh: 1: Syntax error: "&&" unexpected\n')),
    ("true |", (2, "", "sh: 1: Syntax error: end of file unexpected\n")),
    (
        "if true; then echo; fi",
        (2, "", "sh: 1: if: compound commands are not supported by kubesim's shell\n"),
    ),
    ("echo 'a\\tb'", (0, "a\tb\n", "")),  # dash's echo reads escapes
    ("/usr/local/bin/healthcheck now", (4, "healthy now\n", "")),
    ("# only a comment", (0, "", "")),
]


@pytest.mark.parametrize(("script", "expected"), SHELL_CASES, ids=[c[0] for c in SHELL_CASES])
def test_shell(script: str, expected: tuple[int, str, str]) -> None:
    assert sh(script, annotations={"kubesim.dev/files": FILES}) == expected


PROGRAM_CASES: list[tuple[list[str], tuple[int, str, str]]] = [
    (["cat", "/etc/hostname", "/nope"], (1, "web-0\n", "cat: /nope: No such file or directory\n")),
    (["cat", "/etc"], (1, "", "cat: /etc: Is a directory\n")),
    (["test", "-f", "/etc/passwd"], (0, "", "")),
    (["test", "-d", "/etc/passwd"], (1, "", "")),
    (["test", "-e", "/opt/app"], (0, "", "")),
    (["test", "-w", "/etc/passwd"], (1, "", "")),  # a read-only root filesystem
    (["test", "-x", "/bin/sh"], (0, "", "")),
    (["test", "-s", "/dev/null"], (1, "", "")),
    (["test", "3", "-gt", "2", "-a", "!", "-z", "x"], (0, "", "")),
    (["test", "x", "-eq", "1"], (2, "", "test: Illegal number: x\n")),
    (["ls", "/etc/nginx", "/etc/ssl"], (0, "/etc/nginx:\nnginx.conf\n\n/etc/ssl:\nprivate\n", "")),
    (["ls", "/nope"], (2, "", "ls: cannot access '/nope': No such file or directory\n")),
    (["ls", "-z"], (2, "", "ls: invalid option -- 'z'\nTry 'ls --help' for more information.\n")),
    (["stat", "-c", "%a", "/etc/ssl/private/key.pem", "/opt/app"], (0, "600\n750\n", "")),
    (
        ["stat", "-c", "%a", "/nope"],
        (1, "", "stat: cannot statx '/nope': No such file or directory\n"),
    ),
    (["grep", "server_tokens", "/etc/nginx/nginx.conf"], (0, "server_tokens off;\n", "")),
    (["grep", "-q", "nope", "/etc/nginx/nginx.conf"], (1, "", "")),
    (
        ["grep", "-E", "^\\s*server_tokens\\s+off;", "/etc/nginx/nginx.conf"],
        (0, "server_tokens off;\n", ""),
    ),
    (["grep", "^[[:space:]]*PermitRootLogin", "/etc/nginx/nginx.conf"], (1, "", "")),
    (["grep", "-c", "-v", "^#", "/etc/group"], (0, "2\n", "")),
    (
        ["grep", "-n", "x\\{1,\\}:1000", "/etc/passwd"],
        (0, "2:app:x:1000:1000:app:/home/app:/bin/sh\n", ""),
    ),
    (["grep", "(", "/etc/passwd"], (1, "", "")),  # a literal parenthesis in a basic regex
    (["grep", "-E", "(", "/etc/passwd"], (2, "", "grep: Unmatched ( or \\(\n")),
    (
        ["grep", "-c", "user", "/etc/nginx/nginx.conf", "/etc/group"],
        (0, "/etc/nginx/nginx.conf:1\n/etc/group:0\n", ""),
    ),
    (["grep", "x", "/nope"], (2, "", "grep: /nope: No such file or directory\n")),
    (
        ["grep", "-q", "root", "/nope", "/etc/passwd"],
        (0, "", "grep: /nope: No such file or directory\n"),
    ),
    (["sh", "-e", "-c", "false; echo unreachable"], (1, "", "")),
    (["sh", "-e", "-c", "false || true; echo reached"], (0, "reached\n", "")),
    (["echo", "-n", "no newline"], (0, "no newline", "")),
    (["echo", "a\\tb"], (0, "a\\tb\n", "")),  # coreutils echo: no escapes without -e
    (["id"], (0, "uid=0(root) gid=0(root) groups=0(root)\n", "")),
    (["id", "-un"], (0, "root\n", "")),
    (["uname"], (0, "Linux\n", "")),
    (
        ["uname", "-a"],
        (
            0,
            "Linux web-0 6.1.0-kubesim #1 SMP PREEMPT_DYNAMIC Debian 6.1.0 (2024-01-01) "
            "x86_64 GNU/Linux\n",
            "",
        ),
    ),
    (["uname", "-sm"], (0, "Linux x86_64\n", "")),
]


@pytest.mark.parametrize(
    ("argv", "expected"), PROGRAM_CASES, ids=[" ".join(c[0]) for c in PROGRAM_CASES]
)
def test_program(argv: list[str], expected: tuple[int, str, str]) -> None:
    assert run(argv, annotations={"kubesim.dev/files": FILES}) == expected


def test_cat_and_sh_read_standard_input() -> None:
    assert run(["cat"], b"piped\n") == (0, "piped\n", "")
    assert run(["cat", "-", "/etc/hostname"], b"first\n") == (0, "first\nweb-0\n", "")
    assert run(["sh"], b"echo from a script; id -u\n") == (0, "from a script\n0\n", "")


def test_the_default_image_is_debian_with_root_and_a_login_shell() -> None:
    code, passwd, _ = run(["cat", "/etc/passwd"])

    assert code == 0
    assert passwd.splitlines()[0] == "root:x:0:0:root:/root:/bin/bash"
    assert run(["grep", "^ID=", "/etc/os-release"]) == (0, "ID=debian\n", "")
    assert run(["ls", "/"])[1].split() == ["bin", "dev", "etc", "home", "root", "tmp", "usr", "var"]
    assert run(["stat", "-c", "%a", "/etc/shadow"]) == (0, "640\n", "")


def test_identity_follows_the_security_context() -> None:
    spec = {"securityContext": {"runAsUser": 1000, "supplementalGroups": [4]}}
    annotations = {"kubesim.dev/files": FILES}

    assert run(["id"], annotations=annotations, **spec) == (
        0,
        "uid=1000(app) gid=1000(app) groups=1000(app),4\n",
        "",
    )
    # Not root any more: a 0600 root file is out of reach, and so is a 0750 app directory's
    # listing for another user.
    assert run(["cat", "/etc/ssl/private/key.pem"], annotations=annotations, **spec) == (
        1,
        "",
        "cat: /etc/ssl/private/key.pem: Permission denied\n",
    )
    assert run(["id", "-un"], **{"securityContext": {"runAsUser": 4242}})[2] == (
        "id: cannot find name for user ID 4242\n"
    )


def test_environment_hostname_and_working_directory_come_from_the_spec() -> None:
    containers = [
        {
            "name": "app",
            "image": "web:1",
            "workingDir": "/etc",
            "env": [{"name": "MODE", "value": "strict"}],
        }
    ]

    assert run(
        ["sh", "-c", "echo $MODE $HOSTNAME $PATH; cat hostname"],
        containers=containers,
        hostname="frontend",
    ) == (
        0,
        "strict frontend /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nfrontend\n",
        "",
    )


def test_a_container_annotation_applies_after_the_pod_one() -> None:
    annotations = {
        "kubesim.dev/files": "/etc/app.conf: pod-wide\n",
        "kubesim.dev/files.app": "/etc/app.conf: app only\n/bin/grep: null\n",
    }

    assert run(["cat", "/etc/app.conf"], annotations=annotations)[1] == "app only"
    assert sh("grep x /etc/hostname", annotations=annotations)[0] == 127


def test_a_missing_program_fails_before_running() -> None:
    with pytest.raises(CommandNotFound, match='exec: "nmap": executable file not found in'):
        run(["nmap"])
    with pytest.raises(CommandNotFound, match='exec: "/etc/passwd": permission denied'):
        run(["/etc/passwd"])


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("[a, b]", "must be a map of path to entry"),
        ("etc/relative: x", "path 'etc/relative' must be absolute"),
        ("/etc/x: {mode: rwx}", "mode 'rwx' is not octal"),
        ("/etc/x: {contents: typo}", "unknown keys ['contents']"),
        ("/etc/x: [1]", "an entry is a string, a map or null"),
    ],
)
def test_a_malformed_files_annotation_is_reported(annotation: str, message: str) -> None:
    with pytest.raises(FilesAnnotationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        container_for_pod(pod({"kubesim.dev/files": annotation}), "app")

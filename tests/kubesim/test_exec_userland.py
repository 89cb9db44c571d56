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
    ("true && echo yes", (0, "yes\n", "")),
    ("false && echo yes; echo after", (0, "after\n", "")),
    ("false && echo yes", (1, "", "")),
    ("nope", (127, "", "sh: 1: nope: not found\n")),
    ("echo one\nnope", (127, "one\n", "sh: 2: nope: not found\n")),
    (
        "echo 'single $HOME' \"double\" back\\ slash a$",
        (0, "single $HOME double back slash a$\n", ""),
    ),
    ('echo "a""b"\'c\' "" end', (0, "abc  end\n", "")),
    ("cat /etc/passwd | grep -c nologin", (0, "1\n", "")),
    ("test ! -e /etc/ssh/sshd_config && echo absent", (0, "absent\n", "")),
    (
        "grep -Eq '^[[:space:]]*server_tokens[[:space:]]+off;' /etc/nginx/nginx.conf && echo ok",
        (0, "ok\n", ""),
    ),
    ("exit 2 | true; echo still here", (0, "still here\n", "")),
    ("cat /etc/nginx/nginx.conf | grep -n user", (0, "1:user nginx;\n", "")),
    ("cd /etc", (127, "", "sh: 1: cd: not found\n")),  # not simulated
    ("echo err >&2; echo out", (0, "out\n", "err\n")),
    ("cat /nope 2>&1", (1, "cat: /nope: No such file or directory\n", "")),
    ("echo 'open", (2, "", "sh: 1: Syntax error: Unterminated quoted string\n")),
    ("&& true", (2, "", 'sh: 1: Syntax error: "&&" unexpected\n')),
    ("true |", (2, "", "sh: 1: Syntax error: end of file unexpected\n")),
    ("echo a ;; echo b", (2, "", 'sh: 1: Syntax error: ";;" unexpected\n')),
    ("echo 'a\\tb'", (0, "a\tb\n", "")),  # dash's echo reads escapes
    (
        "/usr/local/bin/healthcheck now",
        (126, "", "sh: 1: /usr/local/bin/healthcheck: Exec format error\n"),
    ),
    ("# only a comment", (0, "", "")),
]


@pytest.mark.parametrize(("script", "expected"), SHELL_CASES, ids=[c[0] for c in SHELL_CASES])
def test_shell(script: str, expected: tuple[int, str, str]) -> None:
    assert sh(script, annotations={"kubesim.dev/files": FILES}) == expected


# What dash would run but kubesim's shell does not know: refused before anything runs, exit 2
# as for a script dash cannot parse, never run with another meaning.
REFUSED_SCRIPTS: list[tuple[str, str]] = [
    ("true || echo no", '"||" is'),
    ("echo first; ! test -e /etc/passwd", '"!" is'),
    ("( exit 5 )", '"(" is'),
    ("{ echo a; }", '"{" is'),
    ("true &", '"&" is'),
    ("if true; then echo; fi", "if: compound commands are"),
    ("echo $HOME", "parameter expansion is"),
    ('echo "${HOME}"', "parameter expansion is"),
    ("false; echo $?", "parameter expansion is"),
    ("X=1", "variable assignment is"),
    ("X='a b' true", "variable assignment is"),
    ("echo $(hostname)", "command substitution is"),
    ("echo `uname`", "command substitution is"),
    ("echo x > /tmp/file", 'redirection ">" is'),
    ("echo x >> /tmp/file", 'redirection ">>" is'),
    ("cat < /etc/hostname", 'redirection "<" is'),
    ("echo out 2>/dev/null", 'redirection "2>" is'),
    ("echo out >&-", 'redirection ">&-" is'),
    ("ls /etc/*", 'pathname expansion ("*") is'),
    ("cat ~/.profile", "tilde expansion is"),
]


@pytest.mark.parametrize(("script", "what"), REFUSED_SCRIPTS, ids=[c[0] for c in REFUSED_SCRIPTS])
def test_shell_refuses_what_it_does_not_know(script: str, what: str) -> None:
    assert sh(script) == (2, "", f"sh: 1: {what} not supported by kubesim's shell\n")


def test_quoted_words_are_ordinary_words() -> None:
    assert sh("'!' x; \"if\"; 'X=1'") == (
        127,
        "",
        "sh: 1: !: not found\nsh: 1: if: not found\nsh: 1: X=1: not found\n",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sh"], "reading a script from standard input"),
        (["sh", "-e", "-c", "true"], "option -e (only -c)"),
        (
            ["sh", "/usr/local/bin/healthcheck"],
            "running the script file /usr/local/bin/healthcheck",
        ),
    ],
)
def test_sh_runs_only_dash_c(argv: list[str], message: str) -> None:
    assert run(argv, b"echo from stdin\n", annotations={"kubesim.dev/files": FILES}) == (
        2,
        "",
        f"sh: 0: {message} is not supported by kubesim's shell\n",
    )


def _usage(program: str, complaint: str) -> str:
    return f"{program}: {complaint}\nTry '{program} --help' for more information.\n"


PROGRAM_CASES: list[tuple[list[str], tuple[int, str, str]]] = [
    (["cat", "/etc/hostname", "/nope"], (1, "web-0\n", "cat: /nope: No such file or directory\n")),
    (["cat", "/etc"], (1, "", "cat: /etc: Is a directory\n")),
    (["test", "-f", "/etc/passwd"], (0, "", "")),
    (["test", "-f", "/etc"], (1, "", "")),
    (["test", "-e", "/opt/app"], (0, "", "")),
    (["test", "!", "-e", "/opt/app"], (1, "", "")),
    (["test", "-d", "/etc"], (2, "", "test: kubesim's test knows only [!] -e|-f FILE\n")),
    (["test", "x", "=", "x"], (2, "", "test: kubesim's test knows only [!] -e|-f FILE\n")),
    (["ls", "/etc/nginx", "/etc/ssl"], (0, "/etc/nginx:\nnginx.conf\n\n/etc/ssl:\nprivate\n", "")),
    (["ls", "/nope"], (2, "", "ls: cannot access '/nope': No such file or directory\n")),
    (["ls", "-z"], (2, "", _usage("ls", "invalid option -- 'z'"))),
    (["stat", "-c", "%a", "/etc/ssl/private/key.pem", "/opt/app"], (0, "600\n750\n", "")),
    (
        ["stat", "-c", "%a", "/nope"],
        (1, "", "stat: cannot statx '/nope': No such file or directory\n"),
    ),
    (["stat", "--format=%a", "/etc"], (1, "", _usage("stat", "unrecognized option '--format=%a'"))),
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
    (
        ["grep", "--quiet", "root", "/etc/passwd"],
        (2, "", _usage("grep", "unrecognized option '--quiet'")),
    ),
    (["echo", "-n", "no newline"], (0, "no newline", "")),
    (["echo", "a\\tb"], (0, "a\\tb\n", "")),  # coreutils echo: no escapes without -e
    (["id"], (0, "uid=0(root) gid=0(root) groups=0(root)\n", "")),
    (["id", "-un"], (0, "root\n", "")),
    (["id", "-u"], (0, "0\n", "")),
    (["id", "-g"], (1, "", _usage("id", "invalid option -- 'g'"))),
    (["uname"], (0, "Linux\n", "")),
    (["uname", "-n"], (0, "web-0\n", "")),
    (["uname", "-sm"], (0, "Linux x86_64\n", "")),
    (["uname", "-a"], (1, "", _usage("uname", "invalid option -- 'a'"))),
    (["hostname"], (0, "web-0\n", "")),
]


@pytest.mark.parametrize(
    ("argv", "expected"), PROGRAM_CASES, ids=[" ".join(c[0]) for c in PROGRAM_CASES]
)
def test_program(argv: list[str], expected: tuple[int, str, str]) -> None:
    assert run(argv, annotations={"kubesim.dev/files": FILES}) == expected


def test_cat_reads_standard_input() -> None:
    assert run(["cat"], b"piped\n") == (0, "piped\n", "")
    assert run(["cat", "-", "/etc/hostname"], b"first\n") == (0, "first\nweb-0\n", "")
    assert sh("grep -n b", b"a\nb\n") == (0, "2:b\n", "")


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


def test_hostname_and_working_directory_come_from_the_spec() -> None:
    containers = [{"name": "app", "image": "web:1", "workingDir": "/etc"}]

    assert run(
        ["sh", "-c", "hostname; cat hostname"], containers=containers, hostname="frontend"
    ) == (0, "frontend\nfrontend\n", "")


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
    # A script from the pod's files is not one of the simulated programs: it does not run.
    with pytest.raises(CommandNotFound, match='exec: "/usr/local/bin/healthcheck": exec format'):
        run(["/usr/local/bin/healthcheck"], annotations={"kubesim.dev/files": FILES})
    with pytest.raises(CommandNotFound, match='exec: "bash": executable file not found in'):
        run(["bash", "-c", "true"])


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

"""Executing a parsed script: and-or lists, pipelines, redirections, expansions, builtins.

Pipelines run their stages one after another, each stage's output becoming the next one's
input (the programs here finish without waiting for a reader, so the result is the same as
running them concurrently); every stage of a multi-command pipeline is a subshell, as in dash,
so `exit` there ends only that stage. `set -e` follows POSIX: a failure in a `&&`/`||` condition
or a negated pipeline does not exit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Final

from kubesim.userland.container import Container, Process, Program
from kubesim.userland.filesystem import resolve
from kubesim.userland.shell import (
    AndOr,
    Command,
    Group,
    Pipeline,
    Redirect,
    Script,
    Simple,
    Word,
)
from kubesim.userland.shell_builtins import BUILTINS, ExitShell, ShellIO
from kubesim.userland.streams import BufferOutput, BytesInput, Input, NullOutput, Output

# (container, name, PATH, cwd) -> (path, program) or why it cannot run.
Finder = Callable[[Container, str, str, str], tuple[str, Program] | str]


class _RedirectError(Exception):
    pass


class Shell:
    def __init__(
        self,
        container: Container,
        *,
        name: str,
        flavour: str,
        variables: dict[str, str],
        cwd: str,
        positional: list[str],
        find: Finder,
    ) -> None:
        self.container = container
        self.name = name
        self.flavour = flavour
        self.variables = variables
        self.cwd = cwd
        self.positional = positional
        self.find = find
        self.status = 0
        self.errexit = False
        self.line = 1

    def prefix(self, line: int | None = None) -> str:
        shown = self.line if line is None else line
        if self.flavour == "bash":
            return f"bash: line {shown}: "
        return f"{self.flavour}: {shown}: "

    async def diag(self, io: ShellIO, text: str) -> None:
        await io.stderr.write(f"{self.prefix()}{text}\n".encode())

    def subshell(self) -> Shell:
        copy = Shell(
            self.container,
            name=self.name,
            flavour=self.flavour,
            variables=dict(self.variables),
            cwd=self.cwd,
            positional=list(self.positional),
            find=self.find,
        )
        copy.status, copy.errexit, copy.line = self.status, self.errexit, self.line
        return copy

    async def run_script(self, script: Script, stdin: Input, stdout: Output, stderr: Output) -> int:
        return await self._script(script, ShellIO(stdin, stdout, stderr))

    async def _script(self, script: Script, io: ShellIO) -> int:
        for item in script:
            await self._and_or(item, io)
        return self.status

    async def _and_or(self, node: AndOr, io: ShellIO) -> None:
        status = await self._pipeline(node.first, io)
        last_ran, negated = not node.rest, node.first.negated
        for index, (op, pipeline) in enumerate(node.rest):
            if (op == "&&") == (status == 0):
                status = await self._pipeline(pipeline, io)
                last_ran, negated = index == len(node.rest) - 1, pipeline.negated
        self.status = status
        if self.errexit and status != 0 and last_ran and not negated:
            raise ExitShell(status)

    async def _pipeline(self, node: Pipeline, io: ShellIO) -> int:
        stdin = io.stdin
        for command in node.commands[:-1]:
            pipe = BufferOutput()
            await self.subshell()._in_subshell(command, ShellIO(stdin, pipe, io.stderr))
            stdin = BytesInput(bytes(pipe.data))
        last = node.commands[-1]
        last_io = ShellIO(stdin, io.stdout, io.stderr)
        if len(node.commands) > 1:
            status = await self.subshell()._in_subshell(last, last_io)
        else:
            status = await self._command(last, last_io)
        if node.negated:
            status = int(status == 0)
        self.status = status
        return status

    async def _in_subshell(self, command: Command, io: ShellIO) -> int:
        try:
            return await self._command(command, io)
        except ExitShell as done:
            return done.code

    async def _command(self, command: Command, io: ShellIO) -> int:
        self.line = command.line
        try:
            io = await self._redirect(command.redirects, io)
        except _RedirectError as exc:
            await self.diag(io, str(exc))
            return 2
        if isinstance(command, Group):
            if command.subshell:
                return await self.subshell()._in_subshell_script(command.body, io)
            return await self._script(command.body, io)
        return await self._simple(command, io)

    async def _in_subshell_script(self, script: Script, io: ShellIO) -> int:
        try:
            return await self._script(script, io)
        except ExitShell as done:
            return done.code

    async def _simple(self, command: Simple, io: ShellIO) -> int:
        words = [
            w for w in [await self._expand(word, io) for word in command.words] if w is not None
        ]
        assignments = {
            name: await self._expand(value, io) or "" for name, value in command.assignments
        }
        if not words:
            self.variables.update(assignments)
            return 0
        return await self.run_words(words, io, assignments)

    async def run_words(self, words: list[str], io: ShellIO, extra_env: dict[str, str]) -> int:
        name, args = words[0], words[1:]
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return await builtin(self, name, args, io)
        env = {**self.variables, **extra_env}
        found = self.find(self.container, name, env.get("PATH", ""), self.cwd)
        if isinstance(found, str):
            if found == "not found":
                wording = "command not found" if self.flavour == "bash" else "not found"
                await self.diag(io, f"{name}: {wording}")
                return 127
            await self.diag(io, f"{name}: {found}")
            return 126
        program = found[1]
        return await program(self.process(name, args, io, env))

    def process(
        self, name: str, args: list[str], io: ShellIO, env: dict[str, str] | None = None
    ) -> Process:
        return Process(
            self.container, name, args, io.stdin, io.stdout, io.stderr, self.cwd,
            dict(self.variables if env is None else env),
        )  # fmt: skip

    # --- expansion -------------------------------------------------------------------------

    async def _expand(self, word: Word, io: ShellIO) -> str | None:
        """The word's value; None when it was only unquoted expansions that came out empty
        (POSIX field splitting removes such a word: `cmd $EMPTY` gets no argument)."""
        pieces = []
        for part in word:
            pieces.append(part.value if part.kind == "text" else self._parameter(part.value))
        value = "".join(pieces)
        if value == "" and all(p.kind != "text" and not p.quoted for p in word):
            return None
        return value

    def _parameter(self, name: str) -> str:
        special = {
            "?": str(self.status),
            "$": "1",
            "#": str(len(self.positional)),
            "0": self.name,
            "@": " ".join(self.positional),
            "*": " ".join(self.positional),
            "!": "",
            "-": "e" if self.errexit else "",
        }
        if name in special:
            return special[name]
        if name.isdigit():
            index = int(name) - 1
            return self.positional[index] if index < len(self.positional) else ""
        return self.variables.get(name, "")

    # --- redirection -----------------------------------------------------------------------

    async def _redirect(self, redirects: list[Redirect], io: ShellIO) -> ShellIO:
        stdin, outputs = io.stdin, {1: io.stdout, 2: io.stderr}
        for redirect in redirects:
            target = await self._expand(redirect.target, io) or ""
            fd, op = redirect.fd, redirect.op
            if op in (">&", "<&"):
                if op == "<&" and fd == 0 and target == "0":
                    continue
                if op == ">&" and fd in outputs and target in ("1", "2"):
                    outputs[fd] = outputs[int(target)]
                    continue
                if target == "-" and fd in outputs:
                    outputs[fd] = NullOutput()
                    continue
                raise _RedirectError(f"Syntax error: Bad fd number: {target}")
            if fd > 2 or (op == "<") != (fd == 0):
                raise _RedirectError(f"{fd}{op}{target}: kubesim redirects only 0<, 1> and 2>")
            path = resolve(target, self.cwd)
            if op == "<":
                stdin = BytesInput(self._input_file(target, path))
            elif path == "/dev/null":
                outputs[fd] = NullOutput()
            elif path in _STANDARD_OUTPUTS:
                outputs[fd] = outputs[_STANDARD_OUTPUTS[path]]
            else:
                raise _RedirectError(f"cannot create {target}: {self._why_not_writable(path)}")
        return ShellIO(stdin, outputs[1], outputs[2])

    def _input_file(self, target: str, path: str) -> bytes:
        node = self.container.fs.lookup(path)
        if node is None:
            raise _RedirectError(f"cannot open {target}: No such file")
        if not self.container.may(node, 4):
            raise _RedirectError(f"cannot open {target}: Permission denied")
        return node.content

    def _why_not_writable(self, path: str) -> str:
        node = self.container.fs.lookup(path)
        if node is not None and node.is_dir:
            return "Is a directory"
        parent = self.container.fs.lookup(posixpath.dirname(path))
        if parent is None or not parent.is_dir:
            return "Directory nonexistent"
        # Every exec sees the image as the pod describes it; nothing it writes would persist.
        return "Read-only file system"


_STANDARD_OUTPUTS: Final = {"/dev/stdout": 1, "/dev/stderr": 2}

"""Running a parsed script: `&&` lists, pipelines, `>&2`, and the builtins.

Pipelines run their stages one after another, each stage's output becoming the next one's
input (the programs here finish without waiting for a reader, so the result is the same as
running them concurrently); every stage of a multi-command pipeline is a subshell, as in dash,
so `exit` there ends only that stage.

The builtins are dash's `exit`, `echo`, `test`, `true` and `false`: they run inside the shell,
so they work in an image whose /bin lacks the program of the same name, and dash's `echo`
always reads escapes. Other dash builtins (cd, export, set, exec...) are not simulated:
`sh: 1: cd: not found`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from kubesim.userland import coreutils
from kubesim.userland.container import Container, Process, Program
from kubesim.userland.coreutils_files import test
from kubesim.userland.shell import Command, Pipeline, Script
from kubesim.userland.streams import BufferOutput, BytesInput, Input, Output

# (container, name, cwd) -> (path, program) or why it cannot run.
Finder = Callable[[Container, str, str], tuple[str, Program] | str]


class ExitShell(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ShellIO:
    stdin: Input
    stdout: Output
    stderr: Output


class Shell:
    def __init__(self, container: Container, *, cwd: str, find: Finder) -> None:
        self.container = container
        self.cwd = cwd
        self.find = find
        self.status = 0
        self.line = 1

    async def diag(self, io: ShellIO, text: str) -> None:
        await io.stderr.write(f"sh: {self.line}: {text}\n".encode())

    async def run_script(self, script: Script, stdin: Input, stdout: Output, stderr: Output) -> int:
        io = ShellIO(stdin, stdout, stderr)
        try:
            for and_list in script:
                for index, pipeline in enumerate(and_list):
                    if index and self.status != 0:
                        break
                    self.status = await self._pipeline(pipeline, io)
        except ExitShell as done:
            return done.code
        return self.status

    async def _pipeline(self, commands: Pipeline, io: ShellIO) -> int:
        if len(commands) == 1:
            return await self._command(commands[0], io)
        stdin = io.stdin
        for command in commands[:-1]:
            pipe = BufferOutput()
            await self._in_subshell(command, ShellIO(stdin, pipe, io.stderr))
            stdin = BytesInput(bytes(pipe.data))
        return await self._in_subshell(commands[-1], ShellIO(stdin, io.stdout, io.stderr))

    async def _in_subshell(self, command: Command, io: ShellIO) -> int:
        try:
            return await self._command(command, io)
        except ExitShell as done:
            return done.code

    async def _command(self, command: Command, io: ShellIO) -> int:
        self.line = command.line
        outputs = {1: io.stdout, 2: io.stderr}
        for fd, target in command.dups.items():
            outputs[fd] = outputs[target]
        io = ShellIO(io.stdin, outputs[1], outputs[2])
        name, args = command.words[0], command.words[1:]
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            return await builtin(self, name, args, io)
        found = self.find(self.container, name, self.cwd)
        if isinstance(found, str):
            await self.diag(io, f"{name}: {found}")
            return 127 if found == "not found" else 126
        return await found[1](self.process(name, args, io))

    def process(self, name: str, args: list[str], io: ShellIO) -> Process:
        return Process(self.container, name, args, io.stdin, io.stdout, io.stderr, self.cwd)


Builtin = Callable[[Shell, str, list[str], ShellIO], Awaitable[int]]


async def _exit(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    if args and not args[0].isdigit():
        await shell.diag(io, f"exit: Illegal number: {args[0]}")
        raise ExitShell(2)
    raise ExitShell(int(args[0]) & 0xFF if args else shell.status)


async def _echo(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    return await coreutils.echo(shell.process(name, args, io), dash_builtin=True)


def _via_program(program: Program) -> Builtin:
    async def builtin(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
        return await program(shell.process(name, args, io))

    return builtin


_BUILTINS: Final[dict[str, Builtin]] = {
    "echo": _echo,
    "exit": _exit,
    "false": _via_program(coreutils.false),
    "test": _via_program(test),
    "true": _via_program(coreutils.true),
}

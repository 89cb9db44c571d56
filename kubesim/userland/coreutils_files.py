"""Programs that look at files: cat, ls, stat, test.

Messages and exit statuses are GNU coreutils' (Debian): `cat` exits 1 on a missing file, `ls`
exits 2 when an operand cannot be accessed, `test` exits 2 on a usage error.
"""

from __future__ import annotations

from typing import Final

from kubesim.userland.container import FileError, Process
from kubesim.userland.filesystem import Node
from kubesim.userland.options import parse_options


async def cat(proc: Process) -> int:
    options = await parse_options(proc, "", long={})
    if options is None:
        return 1
    status = 0
    for name in options.operands or ["-"]:
        if name == "-":
            await proc.stdout.write(await proc.stdin.read_all())
            continue
        try:
            await proc.stdout.write(proc.read_file(name))
        except FileError as exc:
            await proc.error(f"{name}: {exc}")
            status = 1
    return status


async def ls(proc: Process) -> int:
    """The names in each directory operand, one per line (not a terminal); no options."""
    options = await parse_options(proc, "", long={})
    if options is None:
        return 2
    status = 0
    operands = options.operands or ["."]
    for index, name in enumerate(operands):
        try:
            node = proc.node(name)
        except FileError as exc:
            await proc.error(f"cannot access '{name}': {exc}")
            status = 2
            continue
        if not node.is_dir:
            await proc.out(name + "\n")
            continue
        if not proc.container.may(node, 4):
            await proc.error(f"cannot open directory '{name}': Permission denied")
            status = 2
            continue
        if len(operands) > 1:
            await proc.out(("\n" if index else "") + f"{name}:\n")
        for child in proc.container.fs.children(proc.path(name)):
            if not child.startswith("."):
                await proc.out(child + "\n")
    return status


async def stat(proc: Process) -> int:
    """GNU stat with `-c/--format`, of which only `%a` (the octal mode) and `%%` are known:
    what the demo profile reads. Other directives print `?`."""
    options = await parse_options(proc, "", with_value="c", long={"format": "c"})
    if options is None:
        return 1
    fmt = options.last("c")
    if fmt is None or not options.operands:
        await proc.error("missing operand" if fmt is not None else "only -c FORMAT is simulated")
        await proc.stderr.write(b"Try 'stat --help' for more information.\n")
        return 1
    status = 0
    for name in options.operands:
        try:
            node = proc.node(name)
        except FileError as exc:
            await proc.error(f"cannot statx '{name}': {exc}")
            status = 1
            continue
        await proc.out(_stat_format(fmt, node) + "\n")
    return status


def _stat_format(fmt: str, node: Node) -> str:
    fields = {"a": f"{node.mode:o}", "%": "%"}
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(fields.get(fmt[i + 1], "?"))
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


class _TestError(Exception):
    pass


_UNARY_FILE: Final = frozenset("efdrwxsLhbcpSugk")
_INTEGER_OPS: Final = {
    "-eq": int.__eq__,
    "-ne": int.__ne__,
    "-lt": int.__lt__,
    "-le": int.__le__,
    "-gt": int.__gt__,
    "-ge": int.__ge__,
}


async def test(proc: Process) -> int:
    """`test EXPR`: 0 true, 1 false, 2 on a bad expression."""
    args = list(proc.args)
    try:
        parser = _TestParser(proc, args)
        result = parser.expression() if args else False
        if parser.pos != len(args):
            raise _TestError("unexpected operator")
    except _TestError as exc:
        await proc.error(str(exc))
        return 2
    return 0 if result else 1


class _TestParser:
    def __init__(self, proc: Process, args: list[str]) -> None:
        self.proc, self.args, self.pos = proc, args, 0

    def take(self) -> str:
        if self.pos >= len(self.args):
            raise _TestError("argument expected")
        self.pos += 1
        return self.args[self.pos - 1]

    def peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.args[index] if index < len(self.args) else None

    def expression(self) -> bool:
        result = self.conjunction()
        while self.peek() == "-o":
            self.pos += 1
            result = self.conjunction() or result
        return result

    def conjunction(self) -> bool:
        result = self.negation()
        while self.peek() == "-a":
            self.pos += 1
            result = self.negation() and result
        return result

    def negation(self) -> bool:
        # `test ! -f x` negates; `test !` alone is the non-empty string "!".
        if self.peek() == "!" and self.peek(1) is not None:
            self.pos += 1
            return not self.negation()
        return self.primary()

    def primary(self) -> bool:
        first = self.take()
        second = self.peek()
        if first == "(" and second is not None and self.peek(1) is not None:
            result = self.expression()
            if self.take() != ")":
                raise _TestError("closing paren expected")
            return result
        if (
            second in ("=", "==", "!=", *_INTEGER_OPS, "-nt", "-ot", "-ef")
            and self.peek(1) is not None
        ):
            self.pos += 1
            return self.binary(first, second, self.take())
        if len(first) == 2 and first[0] == "-" and second is not None:
            if first[1] in "zn":
                self.pos += 1
                return (second == "") == (first[1] == "z")
            if first[1] in _UNARY_FILE:
                self.pos += 1
                return self.file_test(first[1], second)
        return first != ""

    def binary(self, left: str, op: str, right: str) -> bool:
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        if op in _INTEGER_OPS:
            return bool(_INTEGER_OPS[op](self.integer(left), self.integer(right)))
        return False  # -nt, -ot, -ef: every file has the same time and no links

    def integer(self, text: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise _TestError(f"Illegal number: {text}") from None

    def file_test(self, op: str, name: str) -> bool:
        node = self.proc.container.fs.lookup(self.proc.path(name)) if name else None
        if node is None:
            return False
        checks = {
            "e": True,
            "f": not node.is_dir,
            "d": node.is_dir,
            "r": self.proc.container.may(node, 4),
            # The root filesystem is read-only (access(2) answers EROFS), even for root.
            "w": False,
            "x": self.proc.container.may(node, 1),
            "s": node.is_dir or bool(node.content),
            "u": bool(node.mode & 0o4000),
            "g": bool(node.mode & 0o2000),
            "k": bool(node.mode & 0o1000),
        }
        return checks.get(op, False)  # -L -h -b -c -p -S: no links, devices, pipes or sockets

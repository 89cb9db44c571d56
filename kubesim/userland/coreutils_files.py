"""Programs that look at files: cat, ls, stat, test (and `[`).

Messages and exit statuses are GNU coreutils' (Debian): `cat` exits 1 on a missing file, `ls`
exits 2 when an operand cannot be accessed, `test` exits 2 on a usage error.
"""

from __future__ import annotations

import posixpath
import stat as stat_module
from typing import Final

from kubesim.userland.container import FileError, Process, read_accounts
from kubesim.userland.filesystem import Node
from kubesim.userland.options import parse_options

# A fixed time for every file: the image was built then.
_MTIME: Final = 1704067200  # 2024-01-01T00:00:00Z
_LS_DATE: Final = "Jan  1  2024"


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


def mode_string(node: Node) -> str:
    kind = stat_module.S_IFDIR if node.is_dir else stat_module.S_IFREG
    return stat_module.filemode(kind | node.mode)


async def ls(proc: Process) -> int:
    options = await parse_options(
        proc, "laA1dn", long={"all": "a", "almost-all": "A", "directory": "d"}
    )
    if options is None:
        return 2
    status = 0
    operands = options.operands or ["."]
    files: list[tuple[str, Node]] = []
    directories: list[tuple[str, Node]] = []
    for name in operands:
        try:
            node = proc.node(name)
        except FileError as exc:
            await proc.error(f"cannot access '{name}': {exc}")
            status = 2
            continue
        if node.is_dir and "d" not in options.flags:
            directories.append((name, node))
        else:
            files.append((name, node))
    await _ls_block(proc, [(name, node) for name, node in sorted(files)], options.flags)
    for index, (name, node) in enumerate(sorted(directories)):
        if not proc.container.may(node, 4):
            await proc.error(f"cannot open directory '{name}': Permission denied")
            status = 2
            continue
        if files or len(directories) > 1:
            await proc.out(("\n" if files or index else "") + f"{name}:\n")
        path = proc.path(name)
        names = proc.container.fs.children(path)
        if "a" in options.flags:
            names = [".", "..", *names]
        hidden_ok = "a" in options.flags or "A" in options.flags
        entries = []
        for child in names:
            if child.startswith(".") and not hidden_ok:
                continue
            child_path = path if child == "." else posixpath.join(path, child)
            if child == "..":
                child_path = posixpath.dirname(path)
            child_node = proc.container.fs.lookup(child_path)
            if child_node is not None:
                entries.append((child, child_node))
        if "l" in options.flags or "n" in options.flags:
            blocks = sum(4 if n.is_dir else (len(n.content) + 4095) // 4096 * 4 for _, n in entries)
            await proc.out(f"total {blocks}\n")
        await _ls_block(proc, entries, options.flags)
    return status


async def _ls_block(proc: Process, entries: list[tuple[str, Node]], flags: set[str]) -> None:
    if not ("l" in flags or "n" in flags):
        # Not a terminal, so GNU ls prints one name per line.
        for name, _ in entries:
            await proc.out(name + "\n")
        return
    rows = []
    for name, node in entries:
        owner, group = node.owner, node.group
        if "n" in flags:
            owner, group = _numeric(proc, owner, user=True), _numeric(proc, group, user=False)
        rows.append((mode_string(node), 2 if node.is_dir else 1, owner, group, _size(node), name))
    # GNU ls pads the owner and group columns to their widest entry and right-aligns sizes.
    owner_width = max((len(r[2]) for r in rows), default=0)
    group_width = max((len(r[3]) for r in rows), default=0)
    size_width = max((len(str(r[4])) for r in rows), default=0)
    for mode, links, owner, group, size, name in rows:
        await proc.out(
            f"{mode} {links} {owner:<{owner_width}} {group:<{group_width}} "
            f"{size:>{size_width}} {_LS_DATE} {name}\n"
        )


def _size(node: Node) -> int:
    return 4096 if node.is_dir else len(node.content)


def _numeric(proc: Process, name: str, user: bool) -> str:
    table = "/etc/passwd" if user else "/etc/group"
    found = next((a.id for a in read_accounts(proc.container.fs, table) if a.name == name), None)
    return str(found) if found is not None else name


async def stat(proc: Process) -> int:
    """GNU stat with `-c/--format`, `--printf` and the default block; -L is accepted (no
    symlinks exist here). InSpec's file resource reads modes and owners this way."""
    options = await parse_options(
        proc,
        "Lt",
        with_value=("c", "printf"),
        long={"format": "c", "printf": "printf", "dereference": "L"},
    )
    if options is None:
        return 1
    if not options.operands:
        await proc.error("missing operand")
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
        if (fmt := options.last("c")) is not None:
            await proc.out(_stat_format(proc, fmt, name, node) + "\n")
        elif (fmt := options.last("printf")) is not None:
            text = fmt.encode().decode("unicode_escape")
            await proc.out(_stat_format(proc, text, name, node))
        else:
            await proc.out(_stat_block(proc, name, node))
    return status


def _stat_fields(proc: Process, name: str, node: Node) -> dict[str, str]:
    kind = stat_module.S_IFDIR if node.is_dir else stat_module.S_IFREG
    return {
        "a": f"{node.mode:o}",
        "A": mode_string(node),
        "f": f"{kind | node.mode:x}",
        "F": "directory"
        if node.is_dir
        else ("regular empty file" if not node.content else "regular file"),
        "n": name,
        "s": str(_size(node)),
        "U": node.owner,
        "G": node.group,
        "u": _numeric(proc, node.owner, user=True),
        "g": _numeric(proc, node.group, user=False),
        "X": str(_MTIME),
        "Y": str(_MTIME),
        "Z": str(_MTIME),
        "C": "?",
        "h": "2" if node.is_dir else "1",
        "%": "%",
    }


def _stat_format(proc: Process, fmt: str, name: str, node: Node) -> str:
    fields = _stat_fields(proc, name, node)
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(fields.get(fmt[i + 1], "?"))
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _stat_block(proc: Process, name: str, node: Node) -> str:
    f = _stat_fields(proc, name, node)
    return (
        f"  File: {name}\n"
        f"  Size: {f['s']:<10}\tBlocks: {8 if node.content or node.is_dir else 0:<10} "
        f"IO Block: 4096   {f['F']}\n"
        f"Device: 0,0\tInode: 1           Links: {f['h']}\n"
        f"Access: ({node.mode:04o}/{f['A']})  Uid: ({f['u']:>5}/{f['U']:>8})   "
        f"Gid: ({f['g']:>5}/{f['G']:>8})\n"
        "Access: 2024-01-01 00:00:00.000000000 +0000\n"
        "Modify: 2024-01-01 00:00:00.000000000 +0000\n"
        "Change: 2024-01-01 00:00:00.000000000 +0000\n"
        " Birth: -\n"
    )


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
    """`test EXPR` and `[ EXPR ]`: 0 true, 1 false, 2 on a bad expression."""
    args = list(proc.args)
    if proc.basename() == "[":
        if not args or args[-1] != "]":
            await proc.error("missing ]")
            return 2
        args.pop()
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

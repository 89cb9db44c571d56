"""Programs that look at files: cat, ls, stat, test.

Messages and exit statuses are GNU coreutils' (Debian): `cat` exits 1 on a missing file, `ls`
exits 2 when an operand cannot be accessed, `test` exits 2 on an expression it cannot read.
"""

from __future__ import annotations

from kubesim.userland.container import FileError, Process
from kubesim.userland.filesystem import Node
from kubesim.userland.options import parse_options


async def cat(proc: Process) -> int:
    options = await parse_options(proc, "")
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
    options = await parse_options(proc, "")
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
    """GNU stat with `-c FORMAT`, of which only `%a` (the octal mode) and `%%` are known:
    what the demo profile reads. Other directives print `?`."""
    options = await parse_options(proc, "", with_value="c")
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


async def test(proc: Process) -> int:
    """`test [!] -e|-f FILE` (0 true, 1 false), what the demo profile and the tests ask; any
    other expression is refused as dash's test refuses a malformed one (exit 2)."""
    args = list(proc.args)
    negated = len(args) > 1 and args[0] == "!"
    if negated:
        args.pop(0)
    if len(args) != 2 or args[0] not in ("-e", "-f"):
        await proc.error("kubesim's test knows only [!] -e|-f FILE")
        return 2
    node = proc.container.fs.lookup(proc.path(args[1])) if args[1] else None
    found = node is not None and (args[0] == "-e" or not node.is_dir)
    return 0 if found != negated else 1

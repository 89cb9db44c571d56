"""GNU-style option parsing for the simulated programs.

As GNU getopt: short options combine (`-qE`), a short option's value may be attached (`-ca`)
or follow (`-c a`), options may follow operands (`ls /etc -l`), and `--` ends options. No
program here has long options the demo or the tests use, so every `--name` is unrecognized. A
bad option prints coreutils' two-line complaint, and the program exits with its own usage
status.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from kubesim.userland.container import Process


@dataclass
class Parsed:
    flags: set[str] = field(default_factory=set)
    values: dict[str, list[str]] = field(default_factory=dict)
    operands: list[str] = field(default_factory=list)

    def last(self, option: str, default: str | None = None) -> str | None:
        found = self.values.get(option)
        return found[-1] if found else default


class UsageError(Exception):
    pass


def _parse(args: list[str], short: str, with_value: Collection[str]) -> Parsed:
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            parsed.operands.extend(args[i:])
            break
        if arg.startswith("--"):
            raise UsageError(f"unrecognized option '{arg}'")
        if not arg.startswith("-") or arg == "-":
            parsed.operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in with_value:
                value = arg[j + 1 :]
                if not value:
                    if i >= len(args):
                        raise UsageError(f"option requires an argument -- '{letter}'")
                    value, i = args[i], i + 1
                parsed.values.setdefault(letter, []).append(value)
                break
            if letter not in short:
                raise UsageError(f"invalid option -- '{letter}'")
            parsed.flags.add(letter)
            j += 1
    return parsed


async def parse_options(
    proc: Process, short: str, with_value: Collection[str] = ""
) -> Parsed | None:
    """The program's options, or None after printing the usage complaint. `with_value` holds
    the letters of the options that take a value."""
    try:
        return _parse(proc.args, short, with_value)
    except UsageError as exc:
        await proc.error(str(exc))
        await proc.stderr.write(f"Try '{proc.basename()} --help' for more information.\n".encode())
        return None

"""Parsing the POSIX-shell subset that `sh -c` understands in a kubesim container.

Supported: simple commands with `VAR=value` prefixes; single quotes, double quotes and
backslashes; `$VAR`, `${VAR}`, `$?`, `$$`, `$0`..`$9`, `$#`; pipelines with `!`; `&&`, `||`,
`;`, `&` (run in the foreground) and newlines; `( ... )` and `{ ...; }`; redirections `<`,
`>`, `>>`, `N>&M`; comments. Not supported (a clear error, exit 2): `if`, `for`, `while`,
`case` and the other compound commands, command substitution (`$(...)`, backquotes),
arithmetic, globbing and field splitting of expansions. Syntax errors read like dash's, the
/bin/sh of Debian images: `sh: 1: Syntax error: "&&" unexpected`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from kubesim.userland.shell_lexer import (
    Part,
    ShellSyntaxError,
    Token,
    Word,
    is_name,
    literal,
    tokenize,
)

__all__ = [
    "AndOr",
    "Command",
    "Group",
    "Part",
    "Pipeline",
    "Redirect",
    "Script",
    "ShellSyntaxError",
    "Simple",
    "Word",
    "literal",
    "parse",
]

RESERVED_WORDS: Final = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for"}
)


@dataclass(frozen=True)
class Redirect:
    fd: int
    op: str  # ">", ">>", ">|", "<", ">&" or "<&"
    target: Word


@dataclass
class Simple:
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    line: int = 1


@dataclass
class Group:
    """`( list )` (a subshell: variables and `cd` do not leak out) or `{ list; }`."""

    body: Script
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)
    line: int = 1


Command = Simple | Group


@dataclass
class Pipeline:
    commands: list[Command]
    negated: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


Script = list[AndOr]


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.op in ops

    def at_word(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and literal(token.word) == text

    def unexpected(self, expecting: str = "") -> ShellSyntaxError:
        token = self.peek()
        suffix = f' (expecting "{expecting}")' if expecting else ""
        if token is None:
            line = self.tokens[-1].line if self.tokens else 1
            return ShellSyntaxError(f"Syntax error: end of file unexpected{suffix}", line)
        shown = token.op or (
            "newline" if token.kind == "newline" else "".join(p.value for p in token.word)
        )
        return ShellSyntaxError(f'Syntax error: "{shown}" unexpected{suffix}', token.line)

    def skip_newlines(self) -> None:
        while (token := self.peek()) is not None and token.kind == "newline":
            self.pos += 1

    def script(self, closer: str = "") -> Script:
        items: Script = []
        while True:
            self.skip_newlines()
            token = self.peek()
            if token is None or self.at_op(")") or (closer == "}" and self.at_word("}")):
                break
            items.append(self.and_or())
            if self.at_op(";", "&"):
                self.pos += 1
            elif (token := self.peek()) is not None and token.kind == "newline":
                continue
            elif token is not None and not self.at_op(")") and not self.at_word("}"):
                raise self.unexpected()
        return items

    def and_or(self) -> AndOr:
        node = AndOr(self.pipeline())
        while self.at_op("&&", "||"):
            op = self.tokens[self.pos].op
            self.pos += 1
            self.skip_newlines()
            node.rest.append((op, self.pipeline()))
        return node

    def pipeline(self) -> Pipeline:
        negated = self.at_word("!")
        if negated:
            self.pos += 1
        node = Pipeline([self.command()], negated)
        while self.at_op("|"):
            self.pos += 1
            self.skip_newlines()
            node.commands.append(self.command())
        return node

    def command(self) -> Command:
        token = self.peek()
        if token is None:
            raise self.unexpected()
        if self.at_op("(") or self.at_word("{"):
            subshell = token.kind == "op"
            closer = ")" if subshell else "}"
            self.pos += 1
            body = self.script(closer)
            if not body:
                raise self.unexpected()
            if not (self.at_op(")") if subshell else self.at_word("}")):
                raise self.unexpected(closer)
            self.pos += 1
            return Group(body, subshell, self.redirects(), token.line)
        if token.kind == "word" and literal(token.word) in RESERVED_WORDS:
            raise ShellSyntaxError(
                f"{literal(token.word)}: compound commands are not supported by kubesim's shell",
                token.line,
            )
        simple = Simple(line=token.line)
        while (token := self.peek()) is not None and token.kind in ("word", "redirect"):
            if token.kind == "redirect":
                simple.redirects.append(Redirect(token.fd, token.op, token.word))
            elif not simple.words and (assignment := _assignment(token.word)) is not None:
                simple.assignments.append(assignment)
            else:
                simple.words.append(token.word)
            self.pos += 1
        if not (simple.words or simple.assignments or simple.redirects):
            raise self.unexpected()
        return simple

    def redirects(self) -> list[Redirect]:
        found = []
        while (token := self.peek()) is not None and token.kind == "redirect":
            found.append(Redirect(token.fd, token.op, token.word))
            self.pos += 1
        return found


def _assignment(word: Word) -> tuple[str, Word] | None:
    first = word[0] if word else None
    if first is None or first.kind != "text" or first.quoted or "=" not in first.value:
        return None
    name, _, rest = first.value.partition("=")
    if not is_name(name):
        return None
    value = (Part("text", rest, False), *word[1:]) if rest else word[1:]
    return name, value


def parse(text: str) -> Script:
    parser = _Parser(tokenize(text))
    script = parser.script()
    if parser.peek() is not None:
        raise parser.unexpected()
    return script

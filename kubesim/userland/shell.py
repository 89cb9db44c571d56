"""Parsing the shell subset that `sh -c` understands in a kubesim container.

Only what the demo profile, the demo's printed lines and the tests run: simple commands whose
words use single quotes, double quotes and backslashes; pipelines `|`; `&&`; `;` and newlines;
`>&2` / `2>&1` (between standard output and standard error); comments. Everything else dash
would accept (`||`, `!`, `&`, `( … )`, `{ …; }`, `if`/`for`/`while`/`case`, other
redirections, variables and `$` expansions, command substitution, globbing, `~`) is refused
before anything runs with `sh: LINE: … is not supported by kubesim's shell`, exit 2, the status
dash gives a script it cannot parse, rather than being run with another meaning. Syntax errors
read like dash's, the /bin/sh of Debian images: `sh: 1: Syntax error: "&&" unexpected`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

# dash's reserved words: compound commands, pipeline negation and brace groups.
_COMPOUND_WORDS: Final = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for"}
)
_GROUPING_WORDS: Final = frozenset({"!", "{", "}"})
_META: Final = frozenset(" \t\n&|;()<>")
_GLOB: Final = frozenset("*?[")


class ShellSyntaxError(Exception):
    """The script cannot be run; `str()` is the message after "sh: LINE: "."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _unsupported(what: str, line: int) -> ShellSyntaxError:
    return ShellSyntaxError(f"{what} is not supported by kubesim's shell", line)


@dataclass
class Command:
    """A simple command: its words, and its standard streams duplicated (`{1: 2}` for `>&2`)."""

    words: list[str] = field(default_factory=list)
    dups: dict[int, int] = field(default_factory=dict)
    line: int = 1


Pipeline = list[Command]
AndList = list[Pipeline]  # pipelines joined by `&&`
Script = list[AndList]
_Item = TypeVar("_Item", Command, Pipeline)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "&&", "|", ";", "newline" or "dup"
    line: int
    text: str = ""
    bare: str = ""  # a word's leading unquoted characters (reserved words, assignments)
    fds: tuple[int, int] = (1, 2)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        text = self.text
        while self._skip_blanks():
            c = text[self.pos]
            if c == "\n":
                out.append(_Token("newline", self.line))
                self.pos += 1
                self.line += 1
            elif c in "<>" or (c.isdigit() and text[self.pos + 1 : self.pos + 2] in ("<", ">")):
                out.append(self._redirection())
            elif c in _META:
                op = next(o for o in ("&&", "||", ";;", c) if text.startswith(o, self.pos))
                if op == ";;":
                    raise ShellSyntaxError('Syntax error: ";;" unexpected', self.line)
                if op not in ("&&", "|", ";"):
                    raise _unsupported(f'"{op}"', self.line)
                self.pos += len(op)
                out.append(_Token(op, self.line))
            else:
                out.append(self._word())
        return out

    def _skip_blanks(self) -> bool:
        """Skip blanks, line continuations and comments; False at end of input."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t":
                self.pos += 1
            elif text.startswith("\\\n", self.pos):
                self.pos += 2
                self.line += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return True
        return False

    def _redirection(self) -> _Token:
        start = self.pos
        fd = int(self.text[start]) if self.text[start].isdigit() else 1
        self.pos += self.text[start].isdigit()
        if not self.text.startswith(">&", self.pos):
            two = self.text[self.pos + 1 : self.pos + 2] in ("<", ">", "&", "|")
            operator = self.text[start : self.pos + 1 + two]
            raise _unsupported(f'redirection "{operator}"', self.line)
        self.pos += 2
        if not self._skip_blanks() or self.text[self.pos] in _META:
            found = "end of file" if self.pos >= len(self.text) else f'"{self.text[self.pos]}"'
            raise ShellSyntaxError(f"Syntax error: {found} unexpected", self.line)
        target = self._word().text
        if fd not in (1, 2) or target not in ("1", "2"):
            raise _unsupported(f'redirection "{self.text[start : self.pos]}"', self.line)
        return _Token("dup", self.line, fds=(fd, int(target)))

    def _word(self) -> _Token:
        chars: list[str] = []
        bare, quoted = "", False
        text, line = self.text, self.line
        while self.pos < len(text) and text[self.pos] not in _META:
            c = text[self.pos]
            if c == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("Syntax error: Unterminated quoted string", line)
                chars.append(text[self.pos + 1 : end])
                self.line += text.count("\n", self.pos, end)
                self.pos, quoted = end + 1, True
            elif c == '"':
                chars.append(self._double_quoted())
                quoted = True
            elif c == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                self.pos += 2
                if escaped == "\n":
                    self.line += 1
                else:
                    chars.append(escaped or "\\")
                    quoted = True
            else:
                self._refuse_expansion(c, at_start=not chars)
                chars.append(c)
                bare += "" if quoted else c
                self.pos += 1
        return _Token("word", line, text="".join(chars), bare=bare)

    def _double_quoted(self) -> str:
        self.pos += 1  # the opening quote
        chars: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise ShellSyntaxError("Syntax error: Unterminated quoted string", self.line)
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(chars)
            if c == "\\" and text[self.pos + 1 : self.pos + 2] in ('"', "\\", "$", "`", "\n"):
                escaped = text[self.pos + 1]
                self.pos += 2
                chars.append("" if escaped == "\n" else escaped)
                continue
            if c in "$`":
                self._refuse_expansion(c, at_start=False)
            self.line += c == "\n"
            chars.append(c)
            self.pos += 1

    def _refuse_expansion(self, c: str, at_start: bool) -> None:
        """Expansions kubesim's shell does not perform; a lone `$` stays literal, as in dash."""
        nxt = self.text[self.pos + 1 : self.pos + 2]
        if c == "`" or (c == "$" and nxt == "("):
            raise _unsupported("command substitution", self.line)
        if c == "$" and nxt and (nxt.isalnum() or nxt in "_{?$#!@*-"):
            raise _unsupported("parameter expansion", self.line)
        if c in _GLOB:
            raise _unsupported(f'pathname expansion ("{c}")', self.line)
        if c == "~" and at_start:
            raise _unsupported("tilde expansion", self.line)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at(self, *kinds: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in kinds

    def unexpected(self) -> ShellSyntaxError:
        token = self.peek()
        if token is None:
            line = self.tokens[-1].line if self.tokens else 1
            return ShellSyntaxError("Syntax error: end of file unexpected", line)
        shown = token.text if token.kind == "word" else token.kind
        return ShellSyntaxError(f'Syntax error: "{shown}" unexpected', token.line)

    def script(self) -> Script:
        items: Script = []
        while True:
            while self.at("newline"):
                self.pos += 1
            if self.peek() is None:
                return items
            items.append(self.and_list())
            if self.at(";", "newline"):
                self.pos += 1
            elif self.peek() is not None:
                raise self.unexpected()

    def and_list(self) -> AndList:
        return self._joined("&&", self.pipeline)

    def pipeline(self) -> Pipeline:
        return self._joined("|", self.command)

    def _joined(self, operator: str, item: Callable[[], _Item]) -> list[_Item]:
        """`item (operator item)...`; a newline may follow the operator."""
        items = [item()]
        while self.at(operator):
            self.pos += 1
            while self.at("newline"):
                self.pos += 1
            items.append(item())
        return items

    def command(self) -> Command:
        token = self.peek()
        if token is None or token.kind not in ("word", "dup"):
            raise self.unexpected()
        command = Command(line=token.line)
        while (token := self.peek()) is not None and token.kind in ("word", "dup"):
            if token.kind == "dup":
                command.dups[token.fds[0]] = token.fds[1]
            elif not command.words:
                _refuse_reserved(token)
                command.words.append(token.text)
            else:
                command.words.append(token.text)
            self.pos += 1
        return command


def _refuse_reserved(first: _Token) -> None:
    """dash gives these words a meaning kubesim's shell does not have, when they are unquoted."""
    if first.bare == first.text and first.text in _COMPOUND_WORDS:
        message = f"{first.text}: compound commands are not supported by kubesim's shell"
        raise ShellSyntaxError(message, first.line)
    if first.bare == first.text and first.text in _GROUPING_WORDS:
        raise _unsupported(f'"{first.text}"', first.line)
    name, equals, _ = first.bare.partition("=")
    if equals and name and not name[0].isdigit() and all(c.isalnum() or c == "_" for c in name):
        raise _unsupported("variable assignment", first.line)


def parse(text: str) -> Script:
    parser = _Parser(_Lexer(text).tokens())
    return parser.script()

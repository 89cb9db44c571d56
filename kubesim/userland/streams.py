"""Standard input and output of simulated processes.

Programs are coroutines that read their whole standard input at once (`read_all`) and write
output as they go. Reading is asynchronous because the input of an exec is the client's stdin
channel: `cat` with no arguments must wait until the client closes it, while a program that
never reads stdin finishes at once, as a real process would.
"""

from __future__ import annotations

from typing import Protocol


class Input(Protocol):
    async def read_all(self) -> bytes:
        """Everything up to end of file; later calls return b"" (the input is consumed)."""
        ...


class Output(Protocol):
    async def write(self, data: bytes) -> None: ...


class BytesInput:
    """Input that is known up front: a pipe from the previous command, a file, /dev/null."""

    def __init__(self, data: bytes = b"") -> None:
        self._data: bytes | None = data

    async def read_all(self) -> bytes:
        data, self._data = self._data or b"", None
        return data


class BufferOutput:
    """Collects output: the write end of a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


class NullOutput:
    """/dev/null, and the streams an exec client did not ask for."""

    async def write(self, data: bytes) -> None:
        return None

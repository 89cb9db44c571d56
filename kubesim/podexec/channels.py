"""The WebSocket channel protocols of pods/exec and pods/attach (`v4.channel.k8s.io`,
`v5.channel.k8s.io`), served over an ASGI WebSocket.

Every binary message starts with a channel byte: 0 stdin (client to server), 1 stdout, 2
stderr, 3 the error channel, 4 terminal resize (JSON `{"Width", "Height"}` from the client).
When the command ends, the error channel carries one `metav1.Status` as the kubelet writes it
(plain `json.Marshal`, so no kind/apiVersion): `{"metadata":{},"status":"Success"}`, or a
Failure with reason `NonZeroExitCode` and `details.causes: [{reason: ExitCode, message: "N"}]`,
or an InternalError when the runtime could not start the command; then the server closes the
connection. v5 adds channel 255: the client sends `[255, 0]` to half-close stdin, which is how
`kubectl exec -i ... < file` signals end of input (v4 has no way to, so a v4 `cat` reading
stdin ends only when the client hangs up). Text messages are accepted as well (the Python
client sends `write_stdin("...")` as text).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
ERROR: Final = 3
RESIZE: Final = 4
CLOSE: Final = 255
V5: Final = "v5.channel.k8s.io"
V4: Final = "v4.channel.k8s.io"
# In the server's order of preference, which is how a subprotocol is picked from the client's.
SUBPROTOCOLS: Final = (V5, V4)
_FRAME_SIZE: Final = 32 * 1024  # client-go reads WebSocket messages in 32 KiB buffers
_END_OF_TRANSMISSION: Final = b"\x04"  # ^D: how a terminal in raw mode says "end of input"

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


def negotiate(offered: list[str]) -> str | None:
    """The subprotocol to answer with: the first of the client's that kubesim speaks."""
    return next((protocol for protocol in offered if protocol in SUBPROTOCOLS), None)


class ClientStdin:
    """The exec's standard input: what the client sends on channel 0, until it half-closes
    stdin (v5), sends ^D in a TTY, or hangs up. Without `stdin=true` it is /dev/null."""

    def __init__(self, *, attached: bool, tty: bool) -> None:
        self._data = bytearray()
        self._tty = tty
        self._eof = asyncio.Event()
        self._consumed = False
        if not attached:
            self._eof.set()

    def feed(self, data: bytes) -> None:
        if self._eof.is_set():
            return
        if self._tty and _END_OF_TRANSMISSION in data:
            data = data.split(_END_OF_TRANSMISSION, 1)[0]
            self._data += data
            self._eof.set()
            return
        self._data += data

    def close(self) -> None:
        self._eof.set()

    async def read_all(self) -> bytes:
        if self._consumed:
            return b""
        await self._eof.wait()
        self._consumed = True
        return bytes(self._data)


class ChannelOutput:
    """stdout or stderr of the exec, written as channel-prefixed binary messages. A TTY turns
    "\\n" into "\\r\\n", as a terminal's line discipline (onlcr) would."""

    def __init__(self, send: Send, channel: int, *, tty: bool) -> None:
        self._send = send
        self._channel = channel
        self._tty = tty

    async def write(self, data: bytes) -> None:
        if self._tty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        for start in range(0, len(data), _FRAME_SIZE - 1):
            chunk = data[start : start + _FRAME_SIZE - 1]
            await self._send({"type": "websocket.send", "bytes": bytes([self._channel]) + chunk})


async def read_client(receive: Receive, stdin: ClientStdin, protocol: str) -> None:
    """Dispatch what the client sends until it disconnects."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            stdin.close()
            return
        data: bytes = message.get("bytes") or (message.get("text") or "").encode()
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN:
            stdin.feed(payload)
        elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]):
            stdin.close()
        # RESIZE: there is no terminal to redraw; other channels are the server's to write.


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(command: list[str], code: int) -> dict[str, Any]:
    """The kubelet's Status for a command that ran and exited non-zero."""
    shown = " ".join(command)
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: command '{shown}' exited with {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(why: str) -> dict[str, Any]:
    """The kubelet's Status when the runtime failed to start the command (no exit code)."""
    cause = f"error executing command in container: {why}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {cause}",
        "reason": "InternalError",
        "details": {"causes": [{"message": cause}]},
        "code": 500,
    }


async def send_status(send: Send, status: dict[str, Any]) -> None:
    body = json.dumps(status, separators=(",", ":")).encode()
    await send({"type": "websocket.send", "bytes": bytes([ERROR]) + body})

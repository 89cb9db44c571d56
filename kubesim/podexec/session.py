"""Opening an exec or attach stream: validating the request as the apiserver and kubelet do,
then serving it over the WebSocket.

The checks run in the order a real request meets them (query options, the pod's 404, the
container, the kubelet's stream options) and all of them before the transport is considered.
That matters for kubectl: when its WebSocket upgrade fails for any reason it retries over SPDY
(client-go's FallbackExecutor), and what it prints is the answer to that retry; a real error
(unknown container, ...) must win over kubesim's "SPDY is not implemented".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubesim import errors
from kubesim.errors import ApiError
from kubesim.httpio import Request
from kubesim.podexec.channels import (
    STDERR,
    STDOUT,
    SUBPROTOCOLS,
    ChannelOutput,
    ClientStdin,
    Receive,
    Send,
    exit_code_status,
    internal_error_status,
    negotiate,
    read_client,
    send_status,
    success_status,
)
from kubesim.registry import Registry
from kubesim.resources import resource
from kubesim.userland import (
    CommandNotFound,
    Container,
    FilesAnnotationError,
    NullOutput,
    Output,
    container_for_pod,
    run_command,
)

# What a container runtime takes to start an exec'd process (runc exec: a fork, namespaces
# joined, the binary loaded) before the process can write its first byte; on a real node tens
# of milliseconds, besides the apiserver -> kubelet -> runtime streaming hops. Clients rely on
# it without saying so: kubectl <= 1.32 starts reading the WebSocket before it has registered
# its streams, and drops output that arrives in between ("Unknown stream id 1, discarding
# message"; kubernetes/kubernetes#131189, fixed in 1.33). A simulated command answers within
# microseconds, so without this pause kubesim would fail such a kubectl now and then on a busy
# machine where a real cluster does not.
EXEC_START_SECONDS: Final = 0.03

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_SPDY: Final = (
    "kubesim serves pods/{sub} over WebSocket only (subprotocols {protocols}); SPDY is not "
    "implemented. kubectl >= 1.30 and the kubernetes Python client's stream() use WebSocket."
)


@dataclass(frozen=True)
class StreamOptions:
    """PodExecOptions / PodAttachOptions as the apiserver decodes them from the query."""

    container: str
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(request: Request, name: str, default: bool) -> bool:
    values = request.query_values(name)
    if not values:
        return default
    value = values[-1]
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def container_name(pod: Mapping[str, Any], wanted: str) -> str:
    """The container a pods/log, exec or attach request addresses, as the apiserver picks it:
    the only container, or the one named (regular, init or ephemeral); else 400."""
    spec, name = pod.get("spec") or {}, pod["metadata"]["name"]
    regular = [str(c.get("name", "")) for c in spec.get("containers") or []]
    init = [str(c.get("name", "")) for c in spec.get("initContainers") or []]
    ephemeral = [str(c.get("name", "")) for c in spec.get("ephemeralContainers") or []]
    if wanted:
        if wanted not in (*regular, *init, *ephemeral):
            raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(regular) == 1:
        return regular[0]
    message = f"a container name must be specified for pod {name}"
    if regular:
        message += f", choose one of: [{' '.join(regular)}]"
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(message)


def open_stream(
    registry: Registry,
    subresource: str,
    namespace: str,
    name: str,
    request: Request,
    authorize_connect: Callable[[], None] = lambda: None,
) -> StreamSession:
    """A validated exec/attach stream for a WebSocket upgrade, or the ApiError to answer.
    `authorize_connect` runs where the apiserver's connect handler starts (after the query
    options are decoded, before the pod is looked up) and raises to refuse."""
    defaults = {"stdin": False, "stdout": True, "stderr": True, "tty": False}
    flags = {key: _flag(request, key, default) for key, default in defaults.items()}
    authorize_connect()
    pod = registry.get(resource("", "pods"), namespace, name)
    options = StreamOptions(
        container=container_name(pod, request.query.get("container", "")),
        command=request.query_values("command") if subresource == "exec" else [],
        **flags,
    )
    if not (options.stdin or options.stdout or options.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if subresource == "exec" and not options.command:
        raise errors.bad_request("you must specify at least one command for the container")
    if (pod.get("status") or {}).get("phase") != "Running":
        # The kubelet has no running container to exec into (404 from its streaming server).
        raise ApiError(404, "NotFound", f'container not found ("{options.container}")', {})
    try:
        container = container_for_pod(pod, options.container)
    except FilesAnnotationError as exc:
        raise errors.internal_error(f"kubesim: pod {namespace}/{name}: {exc}") from None
    if not request.websocket:
        if "spdy" in request.headers.get("upgrade", "").lower():
            message = _SPDY.format(sub=subresource, protocols=", ".join(SUBPROTOCOLS))
            raise ApiError(501, "NotImplemented", message, {"name": name, "kind": "pods"})
        # The apiserver's upgrade-aware proxy refuses a plain request to a streaming endpoint.
        raise errors.bad_request("Upgrade request required")
    protocol = negotiate(request.subprotocols)
    if protocol is None:
        offered = " ".join(request.subprotocols) or "none"
        raise errors.bad_request(
            f"requested WebSocket subprotocols [{offered}] are not supported; kubesim supports "
            f"[{' '.join(SUBPROTOCOLS)}]"
        )
    return StreamSession(subresource, options, protocol, container)


@dataclass
class StreamSession:
    """An accepted exec or attach: runs over the WebSocket once the upgrade is answered."""

    subresource: str
    options: StreamOptions
    protocol: str
    container: Container

    async def run(self, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept", "subprotocol": self.protocol})
        stdin = ClientStdin(attached=self.options.stdin, tty=self.options.tty)
        reader = asyncio.create_task(read_client(receive, stdin, self.protocol))
        try:
            if self.subresource == "attach":
                # A simulated container's main process is silent and never exits, so attach
                # holds the streams open until the client hangs up, as on a quiet container.
                await reader
                return
            await asyncio.sleep(EXEC_START_SECONDS)
            command = asyncio.create_task(self._exec(send, stdin))
            await asyncio.wait({command, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not command.done():
                command.cancel()  # the client hung up first; nobody is left to answer
                return
            await send_status(send, command.result())
            await send({"type": "websocket.close", "code": 1000})
        except OSError:
            # uvicorn's ClientDisconnected: the client went away while we were writing.
            return
        finally:
            reader.cancel()

    async def _exec(self, send: Send, stdin: ClientStdin) -> dict[str, Any]:
        options = self.options
        stdout: Output = NullOutput()
        stderr: Output = NullOutput()
        if options.stdout:
            stdout = ChannelOutput(send, STDOUT, tty=options.tty)
        if options.tty:
            stderr = stdout  # a terminal has one output stream
        elif options.stderr:
            stderr = ChannelOutput(send, STDERR, tty=False)
        try:
            code = await run_command(self.container, options.command, stdin, stdout, stderr)
        except CommandNotFound as exc:
            return internal_error_status(f"failed to exec in container: {exc}: unknown")
        return success_status() if code == 0 else exit_code_status(options.command, code)

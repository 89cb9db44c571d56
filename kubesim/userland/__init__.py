"""A small simulated userland: what `kubectl exec` finds inside a kubesim container.

There is no container runtime behind kubesim, so each exec runs against a per-container fake
filesystem built from the pod (defaults plus the `kubesim.dev/files` annotations, see
`filesystem`) and a handful of programs written in Python (`coreutils`, `coreutils_files`,
`grep`), with a dash-like shell subset (`shell`, `shell_runtime`) for `sh -c`. It holds only
what the demo profile (examples/demo-scan), the demo's printed lines and the tests run, with
the exit codes and error messages a Debian container would give; whatever else a real
container would accept is refused with an error (`not found` exit 127, an unknown option, or
the shell's `… is not supported by kubesim's shell` exit 2), never run with another meaning.

`run_command` is the entry point used by the exec endpoint.
"""

from kubesim.userland.container import Container
from kubesim.userland.filesystem import FilesAnnotationError
from kubesim.userland.interpreter import CommandNotFound, container_for_pod, run_command
from kubesim.userland.streams import BufferOutput, BytesInput, Input, NullOutput, Output

__all__ = [
    "BufferOutput",
    "BytesInput",
    "CommandNotFound",
    "Container",
    "FilesAnnotationError",
    "Input",
    "NullOutput",
    "Output",
    "container_for_pod",
    "run_command",
]

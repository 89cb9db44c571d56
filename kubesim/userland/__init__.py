"""A small simulated userland: what `kubectl exec` finds inside a kubesim container.

There is no container runtime behind kubesim, so each exec runs against a per-container fake
filesystem built from the pod (defaults plus the `kubesim.dev/files` annotations, see
`filesystem`) and a handful of programs written in Python (`programs`, `programs_text`), with a
POSIX-shell subset (`shell`, `interpreter`) for `sh -c`. It is enough for what scanners such as
InSpec's train-k8s-container do (cat, ls, test, grep, id, uname through `sh -c`), with the exit
codes and error messages a Debian container would give.

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

"""A simulated container (filesystem, identity, working directory) and the process context programs
run in.

The identity follows the pod spec as the kubelet applies it: the container's
`securityContext.runAsUser`/`runAsGroup`, else the pod's, else the image's user (root here); a
user without `runAsGroup` gets its primary group from /etc/passwd, and the pod's
`supplementalGroups` are added. The hostname is `spec.hostname` or the pod's name. There is no
environment: the shell expands no variables, and PATH is Debian's default.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubesim.userland.filesystem import (
    FILES_ANNOTATION,
    Filesystem,
    Node,
    apply_files_annotation,
    default_filesystem,
    resolve,
)
from kubesim.userland.streams import Input, Output

DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Account:
    """One line of /etc/passwd or /etc/group (a group has no primary group)."""

    name: str
    id: int
    gid: int = 0


def read_accounts(fs: Filesystem, path: str) -> list[Account]:
    node = fs.lookup(path)
    if node is None or node.is_dir:
        return []
    accounts = []
    for line in node.content.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        if path == "/etc/group":
            accounts.append(Account(fields[0], int(fields[2])))
        elif len(fields) >= 7 and fields[3].isdigit():
            accounts.append(Account(fields[0], int(fields[2]), int(fields[3])))
    return accounts


@dataclass
class Container:
    namespace: str
    pod: str
    name: str
    hostname: str
    fs: Filesystem
    uid: int = 0
    gid: int = 0
    supplemental_groups: tuple[int, ...] = ()
    working_dir: str = "/"

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.gid, *(g for g in self.supplemental_groups if g != self.gid))

    def user_name(self, uid: int | None = None) -> str | None:
        wanted = self.uid if uid is None else uid
        return next((a.name for a in read_accounts(self.fs, "/etc/passwd") if a.id == wanted), None)

    def group_name(self, gid: int) -> str | None:
        return next((a.name for a in read_accounts(self.fs, "/etc/group") if a.id == gid), None)

    def may(self, node: Node, want: int) -> bool:
        """Whether this container's user has `want` (4 read, 2 write, 1 execute) on `node`.
        Root may read and write anything; it executes only what has some x bit, as Linux."""
        if self.uid == 0:
            return want != 1 or bool(node.mode & 0o111) or node.is_dir
        if self.user_name() == node.owner or str(self.uid) == node.owner:
            return bool(node.mode >> 6 & want)
        group_names = {self.group_name(g) or str(g) for g in self.groups}
        if node.group in group_names:
            return bool(node.mode >> 3 & want)
        return bool(node.mode & want)


def _security_value(container: Mapping[str, Any], pod_spec: Mapping[str, Any], key: str) -> Any:
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod_spec.get("securityContext") or {}).get(key)


def build_container(pod: Mapping[str, Any], container_name: str, programs: list[str]) -> Container:
    """The container `container_name` of `pod` (which the caller has checked exists)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    specs = [
        *(spec.get("containers") or []),
        *(spec.get("initContainers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    container: Mapping[str, Any] = next((c for c in specs if c.get("name") == container_name), {})
    hostname = str(spec.get("hostname") or meta.get("name", ""))
    fs = default_filesystem(hostname, programs)
    annotations = meta.get("annotations") or {}
    for key in (FILES_ANNOTATION, f"{FILES_ANNOTATION}.{container_name}"):
        if key in annotations:
            apply_files_annotation(fs, key, str(annotations[key]))
    uid = _security_value(container, spec, "runAsUser")
    gid = _security_value(container, spec, "runAsGroup")
    sim = Container(
        namespace=str(meta.get("namespace", "")),
        pod=str(meta.get("name", "")),
        name=container_name,
        hostname=hostname,
        fs=fs,
        uid=int(uid) if uid is not None else 0,
        working_dir=resolve(str(container.get("workingDir") or "/")),
    )
    account = next((a for a in read_accounts(fs, "/etc/passwd") if a.id == sim.uid), None)
    sim.gid = int(gid) if gid is not None else (account.gid if account else 0)
    sim.supplemental_groups = tuple(
        int(g) for g in (spec.get("securityContext") or {}).get("supplementalGroups") or ()
    )
    return sim


class FileError(Exception):
    """A failed file access; the message is the errno text ("No such file or directory")."""


@dataclass
class Process:
    """What a running program sees: its container, arguments, streams and directory. `name`
    is argv[0] as the program prints it in messages ("cat")."""

    container: Container
    name: str
    args: list[str]
    stdin: Input
    stdout: Output
    stderr: Output
    cwd: str = "/"

    async def out(self, text: str) -> None:
        await self.stdout.write(text.encode())

    async def error(self, message: str) -> None:
        await self.stderr.write(f"{self.name}: {message}\n".encode())

    def path(self, name: str) -> str:
        return resolve(name, self.cwd)

    def node(self, name: str) -> Node:
        node = self.container.fs.lookup(self.path(name))
        if node is None:
            raise FileError("No such file or directory")
        return node

    def read_file(self, name: str) -> bytes:
        node = self.node(name)
        if node.is_dir:
            raise FileError("Is a directory")
        if not self.container.may(node, 4):
            raise FileError("Permission denied")
        return node.content

    def basename(self) -> str:
        return posixpath.basename(self.name)


Program = Callable[[Process], Awaitable[int]]

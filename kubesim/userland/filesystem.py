"""The fake filesystem of one container: defaults, plus what the pod's annotations say.

Every container starts from a small Debian-like image (`/etc/os-release`, `/etc/passwd`,
`/etc/group`, `/etc/shadow`, `/etc/hostname`, `/dev/null`, the simulated programs in `/bin`).
Seeds and tests then shape it with annotations on the pod, each a YAML (or JSON) map of
absolute path to entry:

    kubesim.dev/files             for every container of the pod
    kubesim.dev/files.<container> for one container, applied after the pod-wide map

An entry is a string (the file's content, mode 0644, root:root), a map
`{content, mode, owner, group}` (mode as an octal string such as "0600"), or null, which removes
the path and everything under it (`/bin/: null` makes a distroless image without a shell). A
path ending in "/" is a directory. The filesystem is read-only: it is rebuilt from the pod for
every exec, as an image's layers would be (no simulated program writes).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

FILES_ANNOTATION: Final = "kubesim.dev/files"
_ELF_MAGIC: Final = b"\x7fELF\x02\x01\x01\x00"

DEFAULT_OS_RELEASE: Final = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""
DEFAULT_PASSWD: Final = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
DEFAULT_GROUP: Final = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
shadow:x:42:
nogroup:x:65534:
"""
DEFAULT_SHADOW: Final = """\
root:*:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
bin:*:19700:0:99999:7:::
sys:*:19700:0:99999:7:::
nobody:*:19700:0:99999:7:::
"""


class FilesAnnotationError(ValueError):
    """A `kubesim.dev/files` annotation that is not a map of path to entry."""


@dataclass(frozen=True)
class Node:
    """A file or directory. Directories have no content; their children are found by path."""

    is_dir: bool
    content: bytes = b""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"


class Filesystem:
    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {"/": Node(is_dir=True, mode=0o755)}

    def lookup(self, path: str) -> Node | None:
        return self._nodes.get(path)

    def children(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(
            p[len(prefix) :]
            for p in self._nodes
            if p != "/" and p.startswith(prefix) and "/" not in p[len(prefix) :]
        )

    def add(self, path: str, node: Node) -> None:
        """Add or replace `path`, creating missing parents. Replacing a directory with a
        directory keeps its contents (an annotation may just change its mode)."""
        parent = posixpath.dirname(path)
        if path != "/":
            existing_parent = self._nodes.get(parent)
            if existing_parent is None or not existing_parent.is_dir:
                self.add(parent, Node(is_dir=True, mode=0o755))
        existing = self._nodes.get(path)
        if existing is not None and existing.is_dir and not node.is_dir:
            self.remove(path)
        self._nodes[path] = node

    def remove(self, path: str) -> None:
        if path == "/":
            self._nodes = {"/": self._nodes["/"]}
            return
        prefix = path + "/"
        for existing in [p for p in self._nodes if p == path or p.startswith(prefix)]:
            del self._nodes[existing]


def resolve(path: str, cwd: str = "/") -> str:
    """An absolute, normalized path (no symlinks exist here, so '..' is purely lexical)."""
    joined = posixpath.normpath(posixpath.join(cwd, path))
    return "/" + joined.lstrip("/")


def default_filesystem(hostname: str, programs: Iterable[str]) -> Filesystem:
    fs = Filesystem()
    for directory, mode in (
        ("/bin", 0o755),
        ("/dev", 0o755),
        ("/etc", 0o755),
        ("/home", 0o755),
        ("/root", 0o700),
        ("/tmp", 0o1777),
        ("/usr/bin", 0o755),
        ("/usr/local/bin", 0o755),
        ("/var", 0o755),
    ):
        fs.add(directory, Node(is_dir=True, mode=mode))
    texts = {
        "/etc/os-release": DEFAULT_OS_RELEASE,
        "/etc/passwd": DEFAULT_PASSWD,
        "/etc/group": DEFAULT_GROUP,
        "/etc/hostname": hostname + "\n",
        "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{hostname}\n",
    }
    for path, text in texts.items():
        fs.add(path, Node(is_dir=False, content=text.encode()))
    fs.add("/etc/shadow", Node(False, DEFAULT_SHADOW.encode(), 0o640, "root", "shadow"))
    fs.add("/dev/null", Node(is_dir=False, mode=0o666))
    for program in programs:
        fs.add(f"/bin/{program}", Node(is_dir=False, content=_ELF_MAGIC, mode=0o755))
    return fs


def apply_files_annotation(fs: Filesystem, annotation_key: str, text: str) -> None:
    """Apply one `kubesim.dev/files[.<container>]` annotation to `fs`."""
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FilesAnnotationError(
            f"annotation {annotation_key} is not valid YAML: {exc}"
        ) from None
    if entries is None:
        return
    if not isinstance(entries, Mapping):
        raise FilesAnnotationError(f"annotation {annotation_key} must be a map of path to entry")
    for raw_path, entry in entries.items():
        path = str(raw_path)
        if not path.startswith("/"):
            raise FilesAnnotationError(
                f"annotation {annotation_key}: path {path!r} must be absolute"
            )
        is_dir = path.endswith("/") and path != "/"
        target = resolve(path)
        if entry is None:
            fs.remove(target)
            continue
        fs.add(target, _node(annotation_key, path, entry, is_dir))


def _node(annotation_key: str, path: str, entry: Any, is_dir: bool) -> Node:
    where = f"annotation {annotation_key}, path {path}"
    if isinstance(entry, str):
        return Node(is_dir, b"" if is_dir else entry.encode(), 0o755 if is_dir else 0o644)
    if not isinstance(entry, Mapping):
        raise FilesAnnotationError(f"{where}: an entry is a string, a map or null")
    unknown = set(entry) - {"content", "mode", "owner", "group"}
    if unknown:
        raise FilesAnnotationError(f"{where}: unknown keys {sorted(unknown)}")
    mode = entry.get("mode", "0755" if is_dir else "0644")
    try:
        # YAML reads an unquoted 0600 as the integer 600: treat its digits as octal too.
        mode_bits = int(str(mode), 8)
    except ValueError:
        raise FilesAnnotationError(f"{where}: mode {mode!r} is not octal") from None
    return Node(
        is_dir=is_dir,
        content=b"" if is_dir else str(entry.get("content", "")).encode(),
        mode=mode_bits & 0o7777,
        owner=str(entry.get("owner", "root")),
        group=str(entry.get("group", "root")),
    )

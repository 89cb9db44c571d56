"""Writing credentials to disk: kubeconfigs hold a bearer token, so they are created private
(0600) from the first byte, and replaced atomically so a reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private_file(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` with mode 0600, replacing any existing file (whose old, possibly
    wider, permissions are not inherited)."""
    target = Path(path)
    # mkstemp creates the file 0600 in the target's directory, so os.replace is atomic.
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target


def private_temp_file(text: str, *, prefix: str) -> Path:
    """A new private (0600) temporary file holding `text`; the caller deletes it."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".kubeconfig")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(name)

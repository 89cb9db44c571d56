"""The policy's `debug_images`: which images a debug container may use.

Patterns are compared with the image reference exactly as the pod spec carries it (no
normalisation: `busybox:1.36` and `docker.io/library/busybox:1.36` are different strings, and
the policy author decides which spelling scanners must use). A pattern ending in `*` is a
prefix (validated in settings to end in `/*`, `:*` or `@*`, so a glob never reaches a
neighbouring repository); anything else must match the whole reference, which makes a
digest-pinned pattern (`repo@sha256:...`) admit exactly that image content.
"""

from __future__ import annotations

from collections.abc import Sequence


def image_allowed(image: str, patterns: Sequence[str]) -> bool:
    return any(_matches(image, pattern) for pattern in patterns)


def _matches(image: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        # The prefix alone (`registry/scanners/`) is not an image.
        return image.startswith(prefix) and len(image) > len(prefix)
    return image == pattern

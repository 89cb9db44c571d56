"""Durations on the command line: `15m`, `1h30m`, `90s`, or plain seconds (`900`)."""

from __future__ import annotations

import argparse
import re
from typing import Final

_UNIT_SECONDS: Final = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in `text`; an `argparse.ArgumentTypeError` (a usage error) otherwise."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    else:
        match = _DURATION.match(value)
        if not value or match is None:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r}: use e.g. 15m, 1h30m, 90s or seconds"
            )
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    """`900` -> `15m`, `5400` -> `1h30m`: how a TTL reads in messages."""
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"

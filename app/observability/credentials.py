"""What a credential looks like, to keep credentials out of logs and stored free text.

scangate never puts a credential into a log message or a column on purpose; these patterns are
the second line of defence: the log formatters mask whatever matches (whichever library wrote
the line), and free-text request fields refuse values that contain a credential, because such
text would be stored, listed to admins and exported with the audit trail.
"""

from __future__ import annotations

import re
from typing import Final

_CREDENTIALS: Final = (
    # scangate API keys: `sg_` + urlsafe base64.
    (re.compile(r"sg_[A-Za-z0-9_-]{16,}"), "sg_[REDACTED]"),
    # JWTs (Kubernetes ServiceAccount tokens, OIDC ID tokens): a base64url JSON header `{"...`.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
    # Whatever follows a Bearer scheme, in case it is neither of the above.
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]{8,}"), r"\1[REDACTED]"),
)


def mask_credentials(text: str) -> str:
    """`text` with credential-shaped substrings masked."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


def contains_credential(text: str) -> bool:
    return any(pattern.search(text) for pattern, _ in _CREDENTIALS)

"""Validating admission: what runs after authorization and validation, before a write is
stored or a stream is opened. `admit()` is the one call the request path makes.

(kubesim-policies branch: only ValidatingAdmissionPolicy is wired here; the validating webhooks
join the same call.)
"""

from __future__ import annotations

from typing import Any

from kubesim.admission.attributes import (
    AdmissionAttributes,
    connect_attributes,
    delete_attributes,
    write_attributes,
)
from kubesim.admission.policies import validate

__all__ = [
    "AdmissionAttributes",
    "admit",
    "connect_attributes",
    "delete_attributes",
    "warning_header",
    "write_attributes",
]


def admit(cluster: Any, attributes: AdmissionAttributes) -> list[str]:
    """Warnings for the response; raises the ApiError of the first denial."""
    return validate(cluster, attributes)


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 `Warning` values as kube-apiserver sends them (`299 - "text"`), joined: client-go
    and kubectl parse several comma-separated warnings from one header."""
    quoted = []
    for text in warnings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'299 - "{escaped}"')
    return ", ".join(quoted)

"""The error tree of app/kube: the only errors that leave this package.

Every `ApiException`, connection error and undecodable answer is translated into these (see
`api_calls.py`), so callers never see raw response bodies, request headers or tokens.
`str(error)` is safe to show users.
"""

from __future__ import annotations


class KubeError(Exception):
    """A Kubernetes call failed. The message is safe to show users."""


class KubeNotFound(KubeError):
    """The object (or its namespace) does not exist (HTTP 404)."""


class KubeConflict(KubeError):
    """The object already exists or was modified concurrently (HTTP 409)."""


class KubeInvalid(KubeError):
    """The API server rejected the request as invalid (HTTP 400/422)."""


class KubeForbidden(KubeError):
    """scangate's own identity lacks a permission (HTTP 403), or is not authenticated (401)."""

    def __init__(self, message: str, *, permission: str) -> None:
        super().__init__(message)
        # e.g. 'create roles.rbac.authorization.k8s.io in namespace "payments"'
        self.permission = permission


class KubeUnavailable(KubeError):
    """The cluster could not be reached or kept failing (connection errors, timeouts,
    5xx/429 after bounded retries)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KubeMalformedResponse(KubeError):
    """The API server answered with an object the client cannot decode (its models refuse it,
    e.g. a required field is missing). Not retried: the same answer would come back."""

    def __init__(self, message: str, *, field: str | None) -> None:
        super().__init__(message)
        # The refused field as the API spells it, with the model holding it:
        # "imageID (V1ContainerStatus)"; None when the client did not say which.
        self.field = field


class KubeUnauthorized(KubeForbidden):
    """The API server rejected scangate's own credentials (HTTP 401)."""

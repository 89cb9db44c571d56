"""The sections of the configuration file, each validated on its own: clusters, API keys,
OIDC, policies, the reaper, rate limiting and the grant guard's listener. `settings.py`
assembles them into `Settings`, checks what spans sections and loads the file and environment.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from app.kube.models import EXPOSURE_KINDS, ExposureKind
from app.kube.profiles import SCANNER_PROFILES

MIN_TTL_SECONDS: Final = 30

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE_GLOB = re.compile(r"^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
PRINCIPAL_KINDS: Final = ("apikey:", "oidc:")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class Section(BaseModel):
    # A typo in the YAML must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(Section):
    name: str = "default"
    kubeconfig: str | None = None  # None -> in-cluster config
    context: str | None = None
    server: str | None = None  # public URL written into issued kubeconfigs
    grants_namespace: str = "scangate-grants"

    @field_validator("name", "grants_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError("must be a DNS-1123 label (lowercase letters, digits, '-')")
        return value


class ApiKeyConfig(Section):
    name: str
    sha256: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("sha256", mode="before")
    @classmethod
    def _hex(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if not _SHA256_HEX.match(value):
                raise ValueError("must be the 64-character hex sha256 of the key")
        return value


def is_trusted_oidc_url(url: str) -> bool:
    """https, or plain http to a loopback address only.

    Keys fetched over plain http could be swapped by anyone on the path, so http is refused,
    except on loopback, which never leaves the host (a local identity provider, the tests).
    """
    parsed = urlsplit(url)
    if parsed.scheme == "https":
        return bool(parsed.hostname)
    return parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS


class OidcConfig(Section):
    issuer: str
    audience: str = Field(min_length=1)
    jwks_url: str | None = None  # omitted -> `jwks_uri` from the issuer's discovery document

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _trusted_url(cls, value: str | None) -> str | None:
        if value is not None and not is_trusted_oidc_url(value):
            raise ValueError("must be an https:// URL (http:// only on loopback)")
        # Tokens' `iss` is compared after the same normalisation (app/auth/oidc.py).
        return value.rstrip("/") if value is not None else None


def _claim_patterns(value: Any) -> Any:
    """`claims:` values: one pattern or a list (any may match). YAML scalars such as
    `ref_protected: true` become the strings tokens carry ("true")."""
    if not isinstance(value, dict):
        return value
    as_text = {True: "true", False: "false"}
    return {
        key: [
            as_text[v] if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v
            for v in (patterns if isinstance(patterns, list) else [patterns])
        ]
        for key, patterns in value.items()
    }


ClaimPatterns = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


def _check_subject(subject: str) -> str:
    if not subject.startswith(PRINCIPAL_KINDS):
        raise ValueError("must start with 'apikey:' or 'oidc:'")
    return subject


def _check_namespace_glob(pattern: str) -> str:
    if not _NAMESPACE_GLOB.match(pattern) or len(pattern) > 63:
        raise ValueError(f"{pattern!r} is not a namespace name or '*' glob")
    return pattern


# An image reference as a pod spec carries it: [registry[:port]/]path[:tag][@digest]. Globs
# are a reference prefix ending in `*` (only at the end: a `*` in the middle would let
# `registry.example.com/*/scanner` match images from any repository of that registry).
_IMAGE_REFERENCE = re.compile(
    r"^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
    r"(@sha256:[0-9a-f]{64})?$"
)


def _check_debug_image(pattern: str) -> str:
    reference = pattern[:-1] if pattern.endswith("*") else pattern
    if "*" in reference:
        raise ValueError(f"{pattern!r}: '*' is only allowed at the end (a prefix glob)")
    if pattern.endswith("*") and not reference.endswith(("/", ":", "@")):
        # `registry.example.com/scanner*` would also match `registry.example.com/scanner-evil`.
        raise ValueError(
            f"{pattern!r}: a glob must end in '/*' (any image under a path), ':*' (any tag) "
            "or '@*' (any digest)"
        )
    probe = reference.rstrip("/:@") if pattern.endswith("*") else reference
    if not probe or not _IMAGE_REFERENCE.match(probe):
        raise ValueError(f"{pattern!r} is not an image reference or a prefix glob")
    return pattern


def _check_scanner(scanner: str) -> str:
    if scanner not in SCANNER_PROFILES:
        raise ValueError(f"unknown scanner {scanner!r}; choose from {', '.join(SCANNER_PROFILES)}")
    return scanner


# The longest a request may wait for its approvers (issue 19: at most 7 days).
MAX_APPROVAL_TIMEOUT_SECONDS: Final = 7 * 24 * 3600


class ApprovalConfig(Section):
    """A policy's two-person rule (app/grants/approvals.py): a request waits, with no cluster
    object, until `required` distinct approvers matching `approvers` (the same patterns as
    `subjects`) have approved it; one denial, or `timeout_seconds` without enough approvals,
    ends it."""

    required: int = Field(default=1, ge=1)
    approvers: list[Annotated[str, AfterValidator(_check_subject)]] = Field(min_length=1)
    # The requester never counts as one of its own approvers unless this is true.
    allow_self_approval: bool = False
    timeout_seconds: int = Field(default=3600, ge=1, le=MAX_APPROVAL_TIMEOUT_SECONDS)

    @model_validator(mode="after")
    def _enough_approvers(self) -> ApprovalConfig:
        exact = {a for a in self.approvers if "*" not in a}
        if len(exact) == len(self.approvers) and len(exact) < self.required:
            # Exact names only: fewer of them than required means no request could ever pass.
            raise ValueError(
                f"required is {self.required} but only {len(exact)} approver(s) are named"
            )
        return self


class PolicyConfig(Section):
    name: str
    subjects: list[Annotated[str, AfterValidator(_check_subject)]] = Field(min_length=1)
    # Filled in by Settings when omitted (see module docstring); "*" means every cluster.
    clusters: list[str] = Field(default_factory=list)
    namespaces: list[Annotated[str, AfterValidator(_check_namespace_glob)]] = Field(min_length=1)
    scanners: list[Annotated[str, AfterValidator(_check_scanner)]] = Field(min_length=1)
    max_ttl_seconds: int = Field(default=3600, ge=MIN_TTL_SECONDS)
    max_pods: int = Field(default=20, ge=1)
    # Cap on a grant's total life across renewals. None in the file means max_ttl_seconds;
    # after validation it is always an int.
    max_lifetime_seconds: int | None = Field(default=None, ge=MIN_TTL_SECONDS)
    # OIDC claims that must also match (claim name -> globs, any of which may match), e.g.
    # {"repository": ["acme/payments"], "ref": ["refs/heads/main", "refs/tags/v*"]}.
    claims: Annotated[
        dict[Annotated[str, Field(min_length=1)], ClaimPatterns], BeforeValidator(_claim_patterns)
    ] = Field(default_factory=dict)
    # The grant guard (app/guard): images a `debug` grant's ephemeral containers may use (exact
    # references, digest-pinned references, or prefix globs like `registry.example.com/scan/*`).
    # Empty: no debug container is ever admitted, so the `debug` profile adds only attach.
    debug_images: list[Annotated[str, AfterValidator(_check_debug_image)]] = Field(
        default_factory=list
    )
    # Debug containers must run as a non-root user unless this is true.
    debug_allow_root: bool = False
    # What an exec/debug grant's pods may expose to whoever runs a process in them (a mounted
    # ServiceAccount token, Secrets and ConfigMaps as volumes or env; app/kube/exposure.py).
    # Default: everything, which is what grants reached before this setting existed; a strict
    # policy lists less (`[]`: only pods that expose none of them) and refuses the rest (422).
    allow_pods_with: list[ExposureKind] = Field(default_factory=lambda: list(EXPOSURE_KINDS))
    # Approval before access (None: grants are immediate).
    approval: ApprovalConfig | None = None
    # A request without a non-blank `reason` is refused (422 naming body.reason).
    require_reason: bool = False
    # The most grants one principal may hold under this policy at once (pending_approval,
    # provisioning and active ones); None: no limit.
    max_active_grants: int | None = Field(default=None, ge=1)

    @field_validator("allow_pods_with")
    @classmethod
    def _unique_exposures(cls, value: list[ExposureKind]) -> list[ExposureKind]:
        return [kind for kind in EXPOSURE_KINDS if kind in value]

    @model_validator(mode="after")
    def _claims_need_oidc(self) -> PolicyConfig:
        if self.claims and not any(s.startswith("oidc:") for s in self.subjects):
            # Only OIDC principals carry claims: such a policy could never match anyone.
            raise ValueError("claims only apply to 'oidc:' subjects, and this policy has none")
        return self

    @model_validator(mode="after")
    def _lifetime(self) -> PolicyConfig:
        if self.max_lifetime_seconds is None:
            object.__setattr__(self, "max_lifetime_seconds", self.max_ttl_seconds)
        elif self.max_lifetime_seconds < self.max_ttl_seconds:
            raise ValueError("max_lifetime_seconds must be at least max_ttl_seconds")
        return self

    @property
    def lifetime_cap_seconds(self) -> int:
        """The renewal cap as a plain int (max_lifetime_seconds, defaulted)."""
        return self.max_lifetime_seconds or self.max_ttl_seconds


class ReaperConfig(Section):
    enabled: bool = True
    provisioning_timeout_seconds: int = Field(default=120, ge=1)
    revoke_retry_max_seconds: int = Field(default=60, ge=1)
    sweep_interval_seconds: int = Field(default=60, ge=1)


class RateLimitConfig(Section):
    """Per-principal token bucket (app/limits): `burst` requests at once, refilled at
    `requests_per_minute`. Enforced by each replica on its own."""

    requests_per_minute: int = Field(ge=1)
    burst: int = Field(default=20, ge=1)


class TlsFilesConfig(Section):
    """A serving certificate and key (PEM files), reloaded when they change."""

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)


class GuardConfig(Section):
    """The grant guard's admission webhook listener (app/guard): its own HTTPS port, because
    kube-apiserver only calls webhooks over TLS and the certificate it trusts (the
    ValidatingWebhookConfiguration's caBundle) is not the API's."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=1, le=65535)
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _tls_files(self) -> GuardConfig:
        if self.enabled and not (self.cert_file and self.key_file):
            # kube-apiserver refuses plain-http webhooks: a guard without TLS cannot work.
            raise ValueError("cert_file and key_file are required when the guard is enabled")
        return self

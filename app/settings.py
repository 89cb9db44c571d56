"""Configuration: one YAML file plus `SCANGATE_*` environment variables, validated at startup.

Precedence (highest first): keyword overrides passed to `load_settings`, environment variables
(`SCANGATE_DATABASE_URL`, `SCANGATE_REAPER__ENABLED=false`, lists/objects as JSON), the YAML file
named by `SCANGATE_CONFIG` (default `scangate.yaml`; a missing *default* file is fine so a first
run just works), then the defaults below. Keys are exactly DESIGN.md's, plus `reaper`,
`default_ttl_seconds`, `log_format`, `rate_limit` and `max_request_body_bytes`.

Bad configuration never starts the service: `load_settings` raises `ConfigError`, whose message
names every bad key (`policies[0].max_ttl_seconds: ...`) and never repeats a submitted value that
might be secret (the database URL may carry a password).

Decisions worth knowing:
- `clusters` omitted -> one cluster `default` using in-cluster config (the Helm deployment).
- A policy that omits `clusters` applies to the only configured cluster; with several clusters it
  must name them (or `"*"`), so adding a production cluster never silently widens old policies.
- Scanners in a policy are exact profile names (no `*`): `debug` is more powerful than `exec`, so
  granting it must be explicit.
- `admins` are exact principal strings (no globs): admin rights are never granted by pattern.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from app.db.urls import UnsupportedDatabaseURL, async_database_url
from app.kube.profiles import SCANNER_PROFILES

CONFIG_ENV_VAR: Final = "SCANGATE_CONFIG"
DEFAULT_CONFIG_PATH: Final = "scangate.yaml"
MIN_TTL_SECONDS: Final = 30

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE_GLOB = re.compile(r"^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_PRINCIPAL_KINDS: Final = ("apikey:", "oidc:")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(Exception):
    """Configuration that must not start the service. `problems` is `[(key, message), ...]`."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" ({source})" if source else ""
        lines = [f"  {key}: {message}" if key else f"  {message}" for key, message in problems]
        super().__init__(f"invalid configuration{where}:\n" + "\n".join(lines))


class _Model(BaseModel):
    # A typo in the YAML must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(_Model):
    name: str = "default"
    kubeconfig: str | None = None  # None -> in-cluster config
    context: str | None = None
    server: str | None = None  # public URL written into issued kubeconfigs
    grants_namespace: str = "scangate-grants"

    @field_validator("name", "grants_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError("must be a DNS-1123 label (lowercase letters, digits, '-')")
        return value


class ApiKeyConfig(_Model):
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


class OidcConfig(_Model):
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
    if not subject.startswith(_PRINCIPAL_KINDS):
        raise ValueError("must start with 'apikey:' or 'oidc:'")
    return subject


def _check_namespace_glob(pattern: str) -> str:
    if not _NAMESPACE_GLOB.match(pattern) or len(pattern) > 63:
        raise ValueError(f"{pattern!r} is not a namespace name or '*' glob")
    return pattern


def _check_scanner(scanner: str) -> str:
    if scanner not in SCANNER_PROFILES:
        raise ValueError(f"unknown scanner {scanner!r}; choose from {', '.join(SCANNER_PROFILES)}")
    return scanner


class PolicyConfig(_Model):
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


class ReaperConfig(_Model):
    enabled: bool = True
    provisioning_timeout_seconds: int = Field(default=120, ge=1)
    revoke_retry_max_seconds: int = Field(default=60, ge=1)
    sweep_interval_seconds: int = Field(default=60, ge=1)


class RateLimitConfig(_Model):
    """Per-principal token bucket (app/limits): `burst` requests at once, refilled at
    `requests_per_minute`. Enforced by each replica on its own."""

    requests_per_minute: int = Field(ge=1)
    burst: int = Field(default=20, ge=1)


# The YAML document for the settings being built; a ContextVar so concurrent loads (tests) of
# different files never see each other's data.
_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("scangate_yaml_data", default=None)


class _YamlSource(PydanticBaseSettingsSource):
    """Hands the already-parsed YAML mapping to pydantic-settings, unknown keys included (so
    `extra="forbid"` reports them)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = _yaml_data.get() or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get() or {})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCANGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # The only secret-bearing key (a PostgreSQL password). It stays a plain str so the URL can
    # be handed to the engine, but it is kept out of repr() and never quoted in errors; log
    # `app.db.urls.redacted_url(...)` instead.
    database_url: str = Field(default="sqlite:///scangate.db", repr=False)
    clusters: list[ClusterConfig] = Field(default_factory=lambda: [ClusterConfig()], min_length=1)
    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    oidc: list[OidcConfig] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    policies: list[PolicyConfig] = Field(default_factory=list)
    denied_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"]
    )
    sidecar_container: str = "scanner"
    reaper: ReaperConfig = Field(default_factory=ReaperConfig)
    default_ttl_seconds: int = Field(default=900, ge=MIN_TTL_SECONDS)
    # `json`: one JSON object per line, for log pipelines; `text`: for people at a terminal.
    log_format: Literal["json", "text"] = "json"
    # Off unless configured: a limit is a deployment decision (how many CI jobs share a key).
    rate_limit: RateLimitConfig | None = None
    # Larger request bodies get 413 before they are parsed (app/limits/body_size.py).
    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            async_database_url(value)
        except UnsupportedDatabaseURL as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("admins")
    @classmethod
    def _admins(cls, value: list[str]) -> list[str]:
        for admin in value:
            if not admin.startswith(_PRINCIPAL_KINDS) or "*" in admin:
                raise ValueError(f"{admin!r} must be an exact 'apikey:NAME' or 'oidc:...' string")
        return value

    @field_validator("denied_namespaces")
    @classmethod
    def _denied(cls, value: list[str]) -> list[str]:
        for namespace in value:
            if not _DNS_LABEL.match(namespace):
                raise ValueError(f"{namespace!r} is not a namespace name")
        return value

    @field_validator("sidecar_container")
    @classmethod
    def _sidecar(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError("must be a container name (DNS-1123 label)")
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        problems = _cross_reference_problems(self)
        if problems:
            # One ValueError carrying pre-formatted "key: message" lines; _problems_from() splits
            # it back so ConfigError lists each key on its own line.
            raise ValueError("\n".join(f"{key}: {message}" for key, message in problems))
        for policy in self.policies:
            if not policy.clusters:
                # Only reachable with exactly one cluster (checked above).
                object.__setattr__(policy, "clusters", [self.clusters[0].name])
        return self

    @property
    def never_grantable_namespaces(self) -> frozenset[str]:
        """denied_namespaces plus every cluster's grants namespace: never a grant target."""
        return frozenset(self.denied_namespaces) | {c.grants_namespace for c in self.clusters}


def _duplicates(values: list[str]) -> dict[int, str]:
    seen: set[str] = set()
    dupes: dict[int, str] = {}
    for index, value in enumerate(values):
        if value in seen:
            dupes[index] = value
        seen.add(value)
    return dupes


def _cross_reference_problems(settings: Settings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    cluster_names = [c.name for c in settings.clusters]
    for i, name in _duplicates(cluster_names).items():
        problems.append((f"clusters[{i}].name", f"duplicate cluster name {name!r}"))
    for i, name in _duplicates([k.name for k in settings.api_keys]).items():
        problems.append((f"api_keys[{i}].name", f"duplicate API key name {name!r}"))
    for i, _ in _duplicates([k.sha256 for k in settings.api_keys]).items():
        problems.append((f"api_keys[{i}].sha256", "the same key hash is configured twice"))
    for i, name in _duplicates([p.name for p in settings.policies]).items():
        problems.append((f"policies[{i}].name", f"duplicate policy name {name!r}"))
    never = settings.never_grantable_namespaces
    for i, policy in enumerate(settings.policies):
        key = f"policies[{i}]"
        if not policy.clusters:
            if "clusters" in policy.model_fields_set:
                problems.append((f"{key}.clusters", "must name at least one cluster (or '*')"))
            elif len(cluster_names) > 1:
                problems.append(
                    (f"{key}.clusters", "required when more than one cluster is configured")
                )
        for j, cluster in enumerate(policy.clusters):
            if cluster != "*" and cluster not in cluster_names:
                problems.append((f"{key}.clusters[{j}]", f"unknown cluster {cluster!r}"))
        for j, namespace in enumerate(policy.namespaces):
            if namespace in never:
                problems.append(
                    (
                        f"{key}.namespaces[{j}]",
                        f"{namespace!r} is a denied or grants namespace and can never be granted",
                    )
                )
    return problems


def _problems_from(error: ValidationError) -> list[tuple[str, str]]:
    from app.errors import field_name

    problems: list[tuple[str, str]] = []
    for item in error.errors(include_input=False, include_url=False):
        key = field_name(tuple(item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required"
        if key:
            problems.append((key, message))
            continue
        # Cross-reference problems arrive as one model-level error of "key: message" lines.
        for line in message.splitlines():
            sub_key, sep, sub_message = line.partition(": ")
            problems.append((sub_key, sub_message) if sep else ("", line))
    return problems


def _read_yaml(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("", f"cannot read the file: {exc.strerror}")], source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([("", f"not valid YAML{where}")], source) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([("", "the top level must be a mapping of keys")], source)
    return data


def load_settings(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build validated Settings from the YAML file, the environment and `overrides`."""
    explicit = config_path is not None or CONFIG_ENV_VAR in os.environ
    path = Path(config_path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)
    if path.exists() or explicit:
        data = _read_yaml(path)
        source = str(path)
    else:
        data, source = {}, "environment"
    token = _yaml_data.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_problems_from(exc), source) from None
    except SettingsError as exc:
        # pydantic-settings could not parse an environment variable (e.g. bad JSON list).
        raise ConfigError([("", str(exc))], source) from None
    finally:
        _yaml_data.reset(token)

"""Configuration: one YAML file plus `SCANGATE_*` environment variables, validated at startup.

Precedence (highest first): keyword overrides passed to `load_settings`, environment variables
(`SCANGATE_DATABASE_URL`, `SCANGATE_REAPER__ENABLED=false`, lists/objects as JSON), the YAML file
named by `SCANGATE_CONFIG` (default `scangate.yaml`; a missing *default* file is fine so a first
run just works), then the defaults (here and in `settings_sections.py`, which validates each
section). The keys are documented in the README ("Configuration").

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

import ipaddress
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from app.db.urls import UnsupportedDatabaseURL, async_database_url
from app.settings_notifications import NotificationConfig, notification_problems
from app.settings_sections import (
    DNS_LABEL,
    MIN_TTL_SECONDS,
    PRINCIPAL_KINDS,
    ApiKeyConfig,
    ClusterConfig,
    GuardConfig,
    OidcConfig,
    PolicyConfig,
    RateLimitConfig,
    ReaperConfig,
    TlsFilesConfig,
)

CONFIG_ENV_VAR: Final = "SCANGATE_CONFIG"
DEFAULT_CONFIG_PATH: Final = "scangate.yaml"


class ConfigError(Exception):
    """Configuration that must not start the service. `problems` is `[(key, message), ...]`."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" ({source})" if source else ""
        lines = [f"  {key}: {message}" if key else f"  {message}" for key, message in problems]
        super().__init__(f"invalid configuration{where}:\n" + "\n".join(lines))


LABEL_VALUE: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")

# The YAML document for the settings being built; a ContextVar so concurrent loads (tests) of
# different files never see each other's data.
_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("scangate_yaml_data", default=None)


class _YamlSource(PydanticBaseSettingsSource):
    """Hands the already-parsed YAML mapping to pydantic-settings, unknown keys included (so
    `extra="forbid"` reports them). Not pydantic-settings' own `YamlConfigSettingsSource`: that
    reads the file itself, and an unreadable file, a YAML syntax error or a document that is
    not a mapping would surface as its exceptions rather than a `ConfigError` naming the file,
    the line and the column (`_read_yaml`)."""

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
    # The grant guard's admission webhook listener (app/guard); off unless configured.
    guard: GuardConfig = Field(default_factory=GuardConfig)
    # Where grant events are POSTed (app/notifications; `settings_notifications.py`).
    notifications: list[NotificationConfig] = Field(default_factory=list)
    # HTTPS for the REST API (`scangate serve`); None: plain HTTP (behind a TLS-terminating
    # proxy, or for local use).
    api_tls: TlsFilesConfig | None = None
    # Addresses or networks (CIDR) of reverse proxies whose `X-Forwarded-For` and
    # `X-Forwarded-Proto` the API believes (the client address logged and audited). Empty:
    # trust nobody, so a caller cannot forge the address it is recorded under.
    trusted_proxies: list[str] = Field(default_factory=list)
    # The value of the `scangate.dev/installation` label on every object this installation
    # creates; the sweep and every delete touch only objects carrying it. None: each cluster's
    # grants namespace, which is unique per installation on a cluster and the same for every
    # replica. Set it when an installation moves to another grants namespace, and never give
    # two installations sharing a cluster the same one.
    installation_id: str | None = None
    # `scangate serve` checks the configuration file this often and reloads it when its content
    # changed (app/reload/watch.py); 0: only SIGHUP reloads.
    config_watch_seconds: float = Field(default=5.0, ge=0)

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
            if not admin.startswith(PRINCIPAL_KINDS) or "*" in admin:
                raise ValueError(f"{admin!r} must be an exact 'apikey:NAME' or 'oidc:...' string")
        return value

    @field_validator("denied_namespaces")
    @classmethod
    def _denied(cls, value: list[str]) -> list[str]:
        for namespace in value:
            if not DNS_LABEL.match(namespace):
                raise ValueError(f"{namespace!r} is not a namespace name")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network (CIDR such as 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("installation_id")
    @classmethod
    def _installation_id(cls, value: str | None) -> str | None:
        if value is not None and not LABEL_VALUE.fullmatch(value):
            raise ValueError(
                "must be a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', "
                "beginning and ending with a letter or digit"
            )
        return value

    def installation_id_for(self, cluster: ClusterConfig) -> str:
        """The installation label value on `cluster` (see `installation_id`)."""
        return self.installation_id or cluster.grants_namespace

    @field_validator("sidecar_container")
    @classmethod
    def _sidecar(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > 63:
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
    problems += notification_problems(settings.notifications)
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


def revalidated_settings(values: dict[str, Any], source: str | None = None) -> Settings:
    """Settings from `values` checked again as a whole, environment and file left unread: a
    reload combines the new file's reloadable sections with the running process's other
    settings (app/reload), and their cross-references must hold together."""
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_problems_from(exc), source) from None


def config_file_path(config_path: str | os.PathLike[str] | None = None) -> Path:
    """The YAML file `load_settings(config_path)` reads (it may not exist)."""
    return Path(config_path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_settings(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build validated Settings from the YAML file, the environment and `overrides`."""
    explicit = config_path is not None or CONFIG_ENV_VAR in os.environ
    path = config_file_path(config_path)
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

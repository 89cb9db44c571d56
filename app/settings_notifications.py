"""The `notifications:` section: where grant events are sent (app/notifications), validated at
startup like every other section, and the names of the events a target may choose.

A target's signing secret comes from exactly one of `secret` (in the file or the environment's
JSON), `secret_file` (a mounted Kubernetes Secret) or `secret_env` (an environment variable). It
is read when the settings load, so a missing file or variable stops startup naming the key; it
is never quoted in an error, never logged and never stored in the database. The URL is treated
the same way in logs (a Slack webhook URL is itself a credential): log lines name the target.
For the same reason the URL may come from `url_file` or `url_env` instead of `url`; it is read
when the settings load (so a reload reads a rotated file again) and then stands in `url`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from app.settings_sections import Section

# What a target may subscribe to. The first ten are the grant's transitions and the guard's
# refusals; the rest are rarer moments an operator may also want to hear about.
NotificationEvent = Literal[
    "requested",
    "approval_needed",
    "approved",
    "denied",
    "active",
    "renewed",
    "revoked",
    "expired",
    "failed",
    "guard_refused",
    "approval_expired",
    "rejected",
    "revocation_failed",
    "kubeconfig_issued",
]
NOTIFICATION_EVENTS: Final[tuple[NotificationEvent, ...]] = get_args(NotificationEvent)
# A target that omits `events` gets these.
DEFAULT_EVENTS: Final[tuple[NotificationEvent, ...]] = NOTIFICATION_EVENTS[:10]

_TARGET_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class NotificationConfig(Section):
    name: str
    # http:// is refused except on loopback unless this is true (events carry who accessed
    # what; a receiver inside the cluster network may still be reached without TLS). Before
    # `url`, whose check reads it.
    allow_plain_http: bool = False
    # Given, or filled from `url_file`/`url_env` once the fields are valid ("" = not given).
    url: str = Field(default="", repr=False)
    url_file: str | None = None
    url_env: str | None = None
    secret: SecretStr | None = None
    secret_file: str | None = None
    secret_env: str | None = None
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS), min_length=1
    )
    format: Literal["cloudevents", "slack"] = "cloudevents"
    # CloudEvents `source`: which scangate installation sent the event.
    source: str = Field(default="/scangate", min_length=1)
    # One delivery attempt's limit; the worker moves on to other grants meanwhile.
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The longest wait between two attempts (the backoff doubles up to it).
    retry_max_seconds: int = Field(default=300, ge=1)
    # After this long undelivered, an event is dropped (a metric and a log line say so).
    give_up_after_seconds: int = Field(default=86400, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TARGET_NAME.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("events")
    @classmethod
    def _unique_events(cls, value: list[NotificationEvent]) -> list[NotificationEvent]:
        return list(dict.fromkeys(value))

    @field_validator("secret_env")
    @classmethod
    def _env_set(cls, value: str | None) -> str | None:
        if value is not None and not os.environ.get(value, "").strip():
            raise ValueError(f"the environment variable {value!r} is not set or empty")
        return value

    @field_validator("secret_file")
    @classmethod
    def _file_readable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            content = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{value} is not UTF-8 text") from None
        if not content.strip():
            raise ValueError(f"{value} is empty")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        _check_url(value, bool(info.data.get("allow_plain_http")), "must be")
        return value

    @field_validator("url_file")
    @classmethod
    def _url_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _only_one_url("url_file", info)
            url = _read_url_file(value)
            _check_url(url, bool(info.data.get("allow_plain_http")), f"the URL in {value} must be")
        return value

    @field_validator("url_env")
    @classmethod
    def _url_env(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _only_one_url("url_env", info)
            url = os.environ.get(value, "").strip()
            if not url:
                raise ValueError(f"the environment variable {value!r} is not set or empty")
            _check_url(url, bool(info.data.get("allow_plain_http")), f"{value} must hold")
        return value

    @model_validator(mode="after")
    def _resolve_url(self) -> NotificationConfig:
        # The fields above checked the file or variable; the model is frozen, so the URL read
        # from it is put in place the way pydantic stores a field.
        if not self.url:
            if self.url_file is not None:
                object.__setattr__(self, "url", _read_url_file(self.url_file))
            elif self.url_env is not None:
                object.__setattr__(self, "url", os.environ.get(self.url_env, "").strip())
        return self

    def secret_value(self) -> bytes | None:
        """The signing secret, read now (from the file or variable if so configured)."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_file is not None:
            return Path(self.secret_file).read_text(encoding="utf-8").strip().encode()
        if self.secret_env is not None:
            return os.environ.get(self.secret_env, "").strip().encode() or None
        return None


def _check_url(url: str, plain_allowed: bool, subject: str) -> None:
    # The URL is never quoted back: a Slack webhook URL is a credential.
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{subject} an http:// or https:// URL")
    if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK_HOSTS and not plain_allowed:
        raise ValueError(
            f"{subject} https:// (http:// only on loopback or with allow_plain_http: true)"
        )


def _only_one_url(key: str, info: ValidationInfo) -> None:
    given = [k for k in ("url", "url_file") if k != key and info.data.get(k)]
    if given:
        raise ValueError(f"give only one of {', '.join([*given, key])}")


def _read_url_file(path: str) -> str:
    try:
        url = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not url:
        raise ValueError(f"{path} is empty")
    return url


def notification_problems(targets: list[NotificationConfig]) -> list[tuple[str, str]]:
    """What spans a target's keys or the whole list: `[(key, message), ...]`."""
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, target in enumerate(targets):
        key = f"notifications[{i}]"
        if target.name in seen:
            problems.append((f"{key}.name", f"duplicate notification target {target.name!r}"))
        seen.add(target.name)
        if not target.url:
            problems.append((f"{key}.url", "required (or url_file, or url_env)"))
        given = [k for k in ("secret", "secret_file", "secret_env") if getattr(target, k)]
        if len(given) > 1:
            problems.append((f"{key}.{given[1]}", f"give only one of {', '.join(given)}"))
        elif not given and target.format == "cloudevents":
            # Slack ignores signatures (its URL is the credential); any other receiver must be
            # able to tell scangate's events from anyone else's POSTs.
            problems.append((f"{key}.secret", "required (or secret_file, or secret_env)"))
    return problems

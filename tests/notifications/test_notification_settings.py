"""The `notifications:` section: what loads, and every mistake stops startup naming its key,
without ever quoting the secret or the URL (a Slack webhook URL is itself a credential)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.notifications.targets import NotificationTargets
from app.settings import ConfigError, load_settings
from app.settings_notifications import DEFAULT_EVENTS

SECRET = "never-show-me-9f8e7d6c"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXXSECRETPATH"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("SCANGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def load(tmp_path: Path, *targets: dict[str, Any]) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"notifications": list(targets)}))
    return load_settings(path)


def problems(tmp_path: Path, *targets: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, *targets)
    text = str(caught.value)
    assert SECRET not in text
    assert "XXXXSECRETPATH" not in text
    return dict(caught.value.problems)


def target(**overrides: Any) -> dict[str, Any]:
    return {"name": "siem", "url": "https://siem.example/hook", "secret": SECRET, **overrides}


def test_a_target_loads_with_defaults_and_its_secret(tmp_path: Path) -> None:
    settings = load(tmp_path, target())
    [config] = settings.notifications
    assert config.format == "cloudevents"
    assert tuple(config.events) == DEFAULT_EVENTS
    assert SECRET not in repr(settings)
    [loaded] = NotificationTargets.from_settings(settings.notifications).names
    assert loaded == "siem"
    assert NotificationTargets.from_settings(settings.notifications).get("siem").secret == (
        SECRET.encode()
    )


def test_the_secret_may_come_from_a_file_or_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    settings = load(
        tmp_path,
        target(secret=None, secret_file=str(secret_file)),
        target(name="other", secret=None, secret_env="HOOK_SECRET"),
    )
    targets = NotificationTargets.from_settings(settings.notifications)
    assert targets.get("siem").secret == SECRET.encode()  # the newline is not part of it
    assert targets.get("other").secret == SECRET.encode()


def test_a_slack_target_needs_no_secret(tmp_path: Path) -> None:
    settings = load(tmp_path, {"name": "chat", "url": SLACK_URL, "format": "slack"})
    assert NotificationTargets.from_settings(settings.notifications).get("chat").secret is None


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"secret": None}, "notifications[0].secret", "required"),
        ({"secret_env": "UNSET_HOOK_SECRET"}, "notifications[0].secret_env", "not set"),
        ({"secret_file": "/nonexistent/hook-secret"}, "notifications[0].secret_file",
         "cannot read"),
        ({"url": "http://siem.example/hook"}, "notifications[0].url", "must be https://"),
        ({"url": "ftp://siem.example/hook"}, "notifications[0].url", "http:// or https://"),
        ({"events": ["activated"]}, "notifications[0].events[0]", "Input should be"),
        ({"events": []}, "notifications[0].events", "at least 1"),
        ({"format": "teams"}, "notifications[0].format", "Input should be"),
        ({"name": "no spaces"}, "notifications[0].name", "letters, digits"),
        ({"give_up_after_seconds": 0}, "notifications[0].give_up_after_seconds", "greater"),
        ({"colour": "red"}, "notifications[0].colour", "unknown key"),
    ],
)  # fmt: skip
def test_a_bad_target_stops_startup_naming_the_key(
    tmp_path: Path, overrides: dict[str, Any], key: str, message: str
) -> None:
    found = problems(tmp_path, target(**overrides))
    assert key in found, found
    assert message in found[key]


def test_two_secrets_or_two_targets_of_one_name_are_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text(SECRET)
    found = problems(
        tmp_path, target(secret_file=str(secret_file)), target(url=SLACK_URL, format="slack")
    )
    assert "give only one of secret, secret_file" in found["notifications[0].secret_file"]
    assert "duplicate notification target 'siem'" in found["notifications[1].name"]


def test_plain_http_beyond_loopback_needs_saying_so(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        target(url="http://collector.logging.svc:8080/events", allow_plain_http=True),
        target(name="local", url="http://127.0.0.1:9000/hook"),
    )
    assert len(settings.notifications) == 2


def test_targets_are_replaced_at_once(tmp_path: Path) -> None:
    settings = load(tmp_path, target(events=["active"]))
    targets = NotificationTargets.from_settings(settings.notifications)
    assert targets.route("activated", {}) == ("active", ("siem",))
    assert targets.route("revoked", {})[1] == ()
    targets.replace_from_settings(
        load(tmp_path, target(name="new", events=["revoked"])).notifications
    )
    assert targets.route("activated", {})[1] == ()
    assert targets.route("revoked", {}) == ("revoked", ("new",))
    assert targets.names == ("new",)
    targets.replace([])
    assert not targets.configured


def test_the_url_may_come_from_a_file_or_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_file = tmp_path / "hook-url"
    url_file.write_text(SLACK_URL + "\n")
    monkeypatch.setenv("CHAT_URL", SLACK_URL)
    settings = load(
        tmp_path,
        {"name": "chat", "url_file": str(url_file), "format": "slack"},
        {"name": "chat2", "url_env": "CHAT_URL", "format": "slack"},
    )
    targets = NotificationTargets.from_settings(settings.notifications)
    assert targets.get("chat").url == SLACK_URL  # the newline is not part of it
    assert targets.get("chat2").url == SLACK_URL
    assert "XXXXSECRETPATH" not in repr(settings)
    # A reload reads the file again: a rotated webhook URL is a changed target.
    url_file.write_text(SLACK_URL.replace("XXXX", "YYYY"))
    reloaded = load(tmp_path, {"name": "chat", "url_file": str(url_file), "format": "slack"})
    assert reloaded.notifications[0].url.endswith("YYYYSECRETPATH")
    assert reloaded.notifications[0] != settings.notifications[0]


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"url": None}, "notifications[0].url", "required (or url_file, or url_env)"),
        ({"url_env": "UNSET_HOOK_URL"}, "notifications[0].url_env",
         "give only one of url, url_env"),
        ({"url": None, "url_env": "UNSET_HOOK_URL"}, "notifications[0].url_env", "not set"),
        ({"url": None, "url_file": "/nonexistent/hook-url"}, "notifications[0].url_file",
         "cannot read"),
        ({"url": None, "url_env": "PLAIN_HOOK_URL"}, "notifications[0].url_env",
         "PLAIN_HOOK_URL must hold https://"),
        ({"url": None, "url_file": "FILE", "url_env": "PLAIN_HOOK_URL"},
         "notifications[0].url_env", "give only one of url_file, url_env"),
    ],
)  # fmt: skip
def test_a_bad_url_source_stops_startup_naming_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
    key: str,
    message: str,
) -> None:
    monkeypatch.setenv("PLAIN_HOOK_URL", "http://hooks.example/XXXXSECRETPATH")
    url_file = tmp_path / "hook-url"
    url_file.write_text(SLACK_URL)
    given = {k: (str(url_file) if v == "FILE" else v) for k, v in overrides.items()}
    found = problems(tmp_path, {k: v for k, v in target(**given).items() if v is not None})
    assert key in found, found
    assert message in found[key]


def test_a_url_file_with_a_plain_http_url_names_the_file_not_the_url(tmp_path: Path) -> None:
    url_file = tmp_path / "hook-url"
    url_file.write_text("http://hooks.example/XXXXSECRETPATH")
    given = {k: v for k, v in target(url_file=str(url_file)).items() if k != "url"}
    found = problems(tmp_path, given)
    assert f"the URL in {url_file} must be https://" in found["notifications[0].url_file"]

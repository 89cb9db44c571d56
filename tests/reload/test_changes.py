"""How a new configuration is compared with the one in force: which sections changed, named by
their entries' identifiers, and which settings only a restart would change."""

from __future__ import annotations

from typing import Any

from app.reload.changes import compare, reloadable_fields, restart_only_fields
from app.settings import Settings


def settings(**values: Any) -> Settings:
    return Settings.model_validate(
        {"clusters": [{"name": "default"}], "api_keys": [], "oidc": [], **values}
    )


def key(name: str, digit: str) -> dict[str, str]:
    return {"name": name, "sha256": digit * 64}


def test_entries_are_counted_by_name_and_never_by_their_contents() -> None:
    before = settings(
        api_keys=[key("ci", "a"), key("old", "b")],
        oidc=[{"issuer": "https://issuer.example", "audience": "scangate"}],
    )
    after = settings(
        api_keys=[key("ci", "c"), key("new", "d")],
        oidc=[{"issuer": "https://issuer.example", "audience": "other"}],
    )

    changes = compare(before, after)

    keys = changes.sections["api_keys"]
    assert (keys.added, keys.removed, keys.changed) == (("new",), ("old",), ("ci",))
    oidc = changes.sections["oidc"]
    assert oidc.added == ("https://issuer.example (other)",)
    assert oidc.removed == ("https://issuer.example (scangate)",)
    assert "c" * 64 not in repr(changes.as_detail())
    assert changes.restart_required == ()


def test_single_values_and_restart_only_settings() -> None:
    before = settings(default_ttl_seconds=900, log_format="json")
    after = settings(default_ttl_seconds=600, log_format="text")

    changes = compare(before, after)

    assert changes.sections["default_ttl_seconds"].changed == ("value",)
    assert changes.restart_required == ("log_format",)
    assert changes.summary() == "default_ttl_seconds (+0 -0 ~1)"


def test_every_setting_is_either_reloadable_or_restart_only() -> None:
    assert set(reloadable_fields()) | set(restart_only_fields()) == set(Settings.model_fields)
    assert {"database_url", "clusters", "guard", "api_tls", "reaper"} <= set(restart_only_fields())
    assert {"api_keys", "oidc", "admins", "policies"} <= set(reloadable_fields())

"""The `scangate` command: key creation, migrations and configuration errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, inspect

from app.auth import ApiKeyVerifier
from app.cli import main
from app.db.urls import sync_database_url
from app.settings_sections import ApiKeyConfig


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCANGATE_CONFIG", raising=False)
    monkeypatch.delenv("SCANGATE_DATABASE_URL", raising=False)


def test_keys_create_prints_a_key_once_and_its_config_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "create", "ci-payments"]) == 0

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    key, entry_line = lines
    entry = yaml.safe_load(entry_line)[0]
    assert key.startswith("sg_")
    assert out.count(key) == 1
    assert entry == {"name": "ci-payments", "sha256": hashlib.sha256(key.encode()).hexdigest()}
    # The printed entry, pasted into the config, accepts the printed key.
    assert ApiKeyVerifier([ApiKeyConfig(**entry)]).match(key) == "ci-payments"


def test_keys_create_rejects_names_that_cannot_be_principals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "create", "bad name!"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "key name" in captured.err


def test_migrate_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'scangate.db'}"
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump({"database_url": url}))

    assert main(["--config", str(config), "migrate"]) == 0

    engine = create_engine(sync_database_url(url))
    try:
        assert {"grants", "alembic_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "at revision head" in capsys.readouterr().out


def test_bad_configuration_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "policies": [
                    {
                        "name": "p",
                        "subjects": ["apikey:ci"],
                        "namespaces": ["payments"],
                        "scanners": ["exec"],
                        "max_ttl_seconds": 5,
                    }
                ]
            }
        )
    )

    assert main(["--config", str(config), "migrate"]) == 2

    assert "policies[0].max_ttl_seconds" in capsys.readouterr().err

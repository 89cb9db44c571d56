"""The guard's configuration keys: policy `debug_images` / `debug_allow_root` and `guard:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import ConfigError, load_settings

POLICY: dict[str, Any] = {
    "name": "p",
    "subjects": ["apikey:ci"],
    "namespaces": ["payments"],
    "scanners": ["debug"],
}


def _load(tmp_path: Path, **document: Any) -> Any:
    path = tmp_path / "scangate.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_settings(path)


@pytest.mark.parametrize(
    "pattern",
    [
        "busybox:1.36",
        "registry.example.com:5000/scanners/*",
        "registry.example.com/scanners/trivy:*",
        "busybox@sha256:" + "a" * 64,
        "busybox@*",
    ],
)
def test_debug_images_accept_references_and_prefix_globs(tmp_path: Path, pattern: str) -> None:
    settings = _load(tmp_path, policies=[{**POLICY, "debug_images": [pattern]}])
    assert settings.policies[0].debug_images == [pattern]
    assert settings.policies[0].debug_allow_root is False


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("*", "a glob must end in '/*'"),
        ("registry.example.com/scan*", "a glob must end in '/*'"),
        ("registry.example.com/*/trivy", "'*' is only allowed at the end"),
        ("Busybox Latest", "is not an image reference"),
    ],
)
def test_bad_debug_image_patterns_stop_startup_naming_the_key(
    tmp_path: Path, pattern: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, policies=[{**POLICY, "debug_images": [pattern]}])
    assert "policies[0].debug_images[0]" in str(caught.value)
    assert message in str(caught.value)


def test_the_guard_is_off_by_default_and_needs_its_certificate_when_on(tmp_path: Path) -> None:
    assert _load(tmp_path).guard.enabled is False
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, guard={"enabled": True, "port": 9443})
    assert "guard: cert_file and key_file are required when the guard is enabled" in str(
        caught.value
    )
    settings = _load(
        tmp_path, guard={"enabled": True, "cert_file": "/tls/tls.crt", "key_file": "/tls/tls.key"}
    )
    assert settings.guard.port == 8443

"""The README's signature recipe, run as a receiver would run it, accepts what scangate signs
and refuses a changed body, a wrong secret and an old timestamp."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.notifications.payloads import Notification, render, signature

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def verify() -> Callable[..., bool]:
    section = README.read_text().split("## Notifications", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # the README's own code
    function = namespace["verify"]
    assert callable(function)
    return function


def signed_body(secret: bytes, *, at: int) -> tuple[bytes, str]:
    notification = Notification(
        target="siem", event="active", event_id=7, audit_type="activated", actor="apikey:ci",
        at=datetime(2026, 12, 4, 18, 0, tzinfo=UTC), detail={"pods": ["web-0"]},
        grant={"id": "01jexample0000000000000000", "scanner": "exec"},
    )  # fmt: skip
    body, _ = render(notification, format="cloudevents", source="/scangate")
    return body, signature(secret, body, at)


def test_the_readme_recipe_verifies_scangates_signatures(verify: Callable[..., bool]) -> None:
    secret = b"the-target-secret"
    body, header = signed_body(secret, at=int(time.time()))
    assert verify(secret, header, body)
    assert not verify(secret, header, body.replace(b"web-0", b"web-1"))
    assert not verify(b"another-secret", header, body)
    old_body, old_header = signed_body(secret, at=int(time.time()) - 3600)
    assert not verify(secret, old_header, old_body)

"""What a new configuration changes, compared section by section with the one in force.

`RELOADABLE_SECTIONS` take effect on a reload; every other setting (the database URL, the
clusters, listen addresses, TLS files, the reaper, rate limits, log format...) is read once
when the process starts, so a change to it is reported as needing a restart and the running
value stays in force.

The summary is written to logs and the audit record, so it says which sections changed and
how many entries were added, removed or changed, with the names of named entries (policy and
API key names, OIDC issuers: identifiers, not secrets); never an entry's contents, which hold
key hashes, notification secrets and the like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel

from app.settings import Settings

# `notifications` is listed ahead of its section: once Settings has it, its targets reload too.
RELOADABLE_SECTIONS: Final = (
    "api_keys",
    "oidc",
    "admins",
    "policies",
    "denied_namespaces",
    "default_ttl_seconds",
    "sidecar_container",
    "notifications",
)


def reloadable_fields() -> tuple[str, ...]:
    return tuple(name for name in RELOADABLE_SECTIONS if name in Settings.model_fields)


def restart_only_fields() -> tuple[str, ...]:
    reloadable = set(reloadable_fields())
    return tuple(name for name in Settings.model_fields if name not in reloadable)


@dataclass(frozen=True)
class SectionChange:
    """How one reloadable section changed. Lists of entries count added, removed and changed
    entries; a single value only says that it changed (`changed == 1`)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def as_detail(self) -> dict[str, Any]:
        return {
            "added": len(self.added), "removed": len(self.removed), "changed": len(self.changed),
            "names": {"added": list(self.added), "removed": list(self.removed),
                      "changed": list(self.changed)},
        }  # fmt: skip


@dataclass(frozen=True)
class ConfigChanges:
    sections: dict[str, SectionChange] = field(default_factory=dict)
    # Settings that differ in the new file but keep their running value until a restart.
    restart_required: tuple[str, ...] = ()

    def as_detail(self) -> dict[str, Any]:
        return {
            "changed": {name: change.as_detail() for name, change in self.sections.items()},
            "restart_required": list(self.restart_required),
        }

    def summary(self) -> str:
        parts = [
            f"{name} (+{len(c.added)} -{len(c.removed)} ~{len(c.changed)})"
            for name, c in self.sections.items()
        ]
        return ", ".join(parts) if parts else "nothing reloadable"


def compare(running: Settings, new: Settings) -> ConfigChanges:
    """The differences between the settings in force and a newly loaded file."""
    sections: dict[str, SectionChange] = {}
    for name in reloadable_fields():
        change = _section_change(getattr(running, name), getattr(new, name))
        if change is not None:
            sections[name] = change
    restart = tuple(
        name for name in restart_only_fields() if getattr(running, name) != getattr(new, name)
    )
    return ConfigChanges(sections, restart)


def merged(running: Settings, new: Settings) -> dict[str, Any]:
    """The values of the settings to put in force: the new file's reloadable sections, the
    running process's value of everything else."""
    values = {name: getattr(running, name) for name in Settings.model_fields}
    values.update({name: getattr(new, name) for name in reloadable_fields()})
    return values


def _section_change(old: object, new: object) -> SectionChange | None:
    if old == new:
        return None
    if isinstance(old, Sequence) and isinstance(new, Sequence) and not isinstance(old, str):
        return _list_change(old, new)
    return SectionChange(changed=("value",))


def _list_change(old: Sequence[object], new: Sequence[object]) -> SectionChange:
    before = _by_identity(old)
    after = _by_identity(new)
    return SectionChange(
        added=tuple(k for k in after if k not in before),
        removed=tuple(k for k in before if k not in after),
        changed=tuple(k for k in after if k in before and before[k] != after[k]),
    )


def _by_identity(entries: Sequence[object]) -> dict[str, object]:
    return {_identity(entry, index): entry for index, entry in enumerate(entries)}


def _identity(entry: object, index: int) -> str:
    """How an entry is named in a change summary: its `name`, an OIDC entry's issuer and
    audience, a plain string itself (principals, namespaces); else its position."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, BaseModel):
        name = getattr(entry, "name", None)
        if isinstance(name, str):
            return name
        issuer, audience = getattr(entry, "issuer", None), getattr(entry, "audience", None)
        if isinstance(issuer, str):
            return f"{issuer} ({audience})"
    return f"[{index}]"

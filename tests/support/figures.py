"""What each reliability scenario did (requests made, faults injected, ...), collected for the
end-of-run report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The `figures` fixture: `figures(**values)` records the running test's figures.
RecordFigures = Callable[..., None]


class Figures:
    """What each scenario did, as `{scenario: {figure: value}}`, for the end-of-run report."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def record(self, scenario: str, **values: Any) -> None:
        self.rows.setdefault(scenario, {}).update(values)

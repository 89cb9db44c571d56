"""The service's log records captured as `scangate serve` writes them (JSON lines)."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from app.observability.logs import JsonFormatter, RequestIdFilter


def _service_side(record: logging.LogRecord) -> bool:
    # The tests' own HTTP client logs the URLs it requests; that is not the service's log.
    return not record.name.startswith(("httpx", "httpcore"))


class LogCapture(logging.Handler):
    """Every record of the service: kept as is (to search what the code put in it, before any
    masking) and as the JSON line the production formatter writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.kept: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.formatter_ = JsonFormatter()
        self.addFilter(_service_side)
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(record)
        self.lines.append(self.formatter_.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def raw(self) -> str:
        """Everything the records carry, unmasked: messages, arguments, extras, tracebacks."""
        parts: list[str] = []
        for record in self.kept:
            parts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
            if record.exc_info:
                parts.append("".join(traceback.format_exception(*record.exc_info)))
        return "\n".join(parts)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def by_logger(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == name]

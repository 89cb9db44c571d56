"""Log formatting: JSON lines (the default, for log pipelines) or text (for people).

Every record gets the current request id, so the lines one request causes (its access record,
audit records, warnings from the cluster client) can be found together. Structured data rides
in `extra={...}` and lands as JSON fields.

Secrets must never be logged, and the code is written so that they are not: credentials are not
put in messages, request headers and bodies are not logged, routes are logged as templates.
The formatters are the last line of defence on top of that: every formatted line is searched
for credential-shaped strings (scangate API keys, JWTs such as Kubernetes and OIDC tokens,
`Bearer ...`, see `credentials`) and they are masked, whichever library wrote the line.

`logging_config` builds the `logging.config.dictConfig` document `scangate serve` hands to
uvicorn, so the server's own lines are formatted the same way. The app factory never touches
the process-wide logging setup: tests and embedders build apps without side effects.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final, Literal

from app.observability.context import current_request_id
from app.observability.credentials import mask_credentials
from app.rfc3339 import format_rfc3339

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "request_id", "taskName"}


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside requests) to every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return format_rfc3339(datetime.fromtimestamp(record.created, UTC))


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the record's
    `extra` fields (and `exception` with the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id is not None:
            document["request_id"] = request_id
        document.update(_extra_fields(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(document, default=str, ensure_ascii=False, separators=(",", ":"))
        return mask_credentials(line)


class TextFormatter(logging.Formatter):
    """`2025-01-31T12:00:00.123Z INFO scangate.access [req 4f...] message key=value ...`"""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        parts = [_timestamp(record), record.levelname, record.name]
        if request_id is not None:
            parts.append(f"[req {request_id}]")
        parts.append(record.getMessage())
        for key, value in _extra_fields(record).items():
            rendered = value if isinstance(value, str) else json.dumps(value, default=str)
            parts.append(f"{key}={rendered}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return mask_credentials(line)


def build_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def skip_unused_record_fields() -> None:
    """Stop `logging` from collecting, for every record, what neither formatter writes: the
    calling function's file and line (a walk up the stack), thread, process and task names.
    The logging HOWTO's "Optimization" section documents these switches. Process-wide, so
    only `scangate serve` calls it (the records of a grant are a few per request)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def logging_config(log_format: LogFormat, level: str = "info") -> dict[str, Any]:
    """A dictConfig document: one stderr handler on the root logger with our formatter;
    uvicorn's loggers propagate to it, except its access log, which the request middleware
    replaces (one access record per request, with route template, principal and grant)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"scangate": {"()": build_formatter, "log_format": log_format}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "scangate",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # httpx logs every request's URL at INFO, and a notification target's URL may be a
            # credential (a Slack webhook's is): app/notifications logs the target's name.
            "httpx": {"level": "WARNING"},
        },
    }

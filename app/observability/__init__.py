"""Operability: Prometheus metrics, structured logs with request ids, and audit log records.

- `metrics`: `ScangateMetrics`, one Prometheus registry per app (several apps share a test
  process, so nothing here is a module-level singleton) and the instruments the service updates.
- `requests`: the ASGI middleware that gives every request an id (`X-Request-ID`), times it by
  route template and writes the one access record per request.
- `logs`: JSON-lines (default) or text formatting, request-id injection and a last-line scrubber
  that masks credential-shaped strings in any log record.
- `audit`: every grant event, once committed, also becomes a structured audit log record.
- `endpoint`: `GET /metrics`.
"""

"""Operability: Prometheus metrics, structured logs with request ids, and audit log records.

- `metrics`: `ScangateMetrics`, one Prometheus registry per app (several apps share a test
  process, so nothing here is a module-level singleton) and the instruments the service updates.
- `requests`: the ASGI middleware that gives every request an id (`X-Request-ID`), times it by
  route template and writes the one access record per request (`context` carries the id).
- `logs`: JSON-lines (default) or text formatting and request-id injection; `credentials`
  masks credential-shaped strings in every formatted line and refuses them in free text.
- `audit`: every grant event, once committed, also becomes a structured audit log record.
- `endpoint`: `GET /metrics`; `install`: wires all of it into one app.

It imports no domain package (the grant-id check is handed in; `/metrics` reads the
active-grants count through `Services`), so every package may use it.
"""

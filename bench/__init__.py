"""The benchmark harness: `python -m bench [--quick] [--json PATH] [--plot PATH]`.

It measures what scangate adds to the Kubernetes round trips it cannot avoid. kubesim runs in
its own process with a fixed injected latency per API request (standing in for a real API
server's), scangate runs as `scangate serve` (uvicorn, a real socket) on SQLite and on
PostgreSQL, and a real HTTP client drives it. The *floor* is measured in the same run: the
same Kubernetes calls made directly with the official `kubernetes` client at the same latency
and concurrency, with no HTTP API, database or policy in between.

Modules: `plan` (what to measure, full and quick), `stats`, `cluster` (kubesim), `service`
(scangate and its database), `floor`, `requests` (POST, kubeconfig, revoke), `expiry`
(revocation lag and mass reaping), `guard` (the grant guard's admission decisions, and an exec
with its webhook against one without), `report` (table, JSON, machine) and `plot`.
"""

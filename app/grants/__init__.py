"""Grants: the core of scangate.

A grant is one caller's time-limited access to named pods. This package owns its whole life:
request schemas (`schemas`), every state change (`lifecycle`, with `provisioning` and
`deletion` for its cluster side; `approvals` for the decisions on grants a policy makes wait),
the reads behind the API (`service`), the SQL (`repository`, `reaper_queries`,
`approval_queries`, and `batch_writes` under the group-committing `group_commit`), the HTTP routes
(`endpoints`, `audit_feed`) and the background reaper (`reaper`, `sweep`) that ends grants on
time and cleans up after crashes. docs/ARCHITECTURE.md walks through it.
"""

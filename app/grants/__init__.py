"""Grants: the core of scangate.

A grant is one caller's time-limited access to named pods. This package owns its whole life:
request schemas (`schemas`), the only SQL (`repository`), the lifecycle (`service`,
`provisioning`, `revocation`), the HTTP routes (`endpoints`) and the background reaper
(`reaper`, `sweep`) that ends grants on time and cleans up after crashes.
"""

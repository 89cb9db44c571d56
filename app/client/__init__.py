"""The `scangate` client: the commands a CI pipeline runs against a scangate service
(`scangate grant ...`, `scangate whoami`, `scangate run`). It talks to `SCANGATE_URL` over HTTP
with the bearer credential in `SCANGATE_TOKEN` (or `--token-file`): an API key or, better, the
CI system's short-lived OIDC ID token.

It shares the `scangate` entry point with the server commands but none of their code: nothing
here imports the service, the database or Kubernetes, so it stays light and fast to start.
"""

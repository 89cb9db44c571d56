"""kubesim: a simulated Kubernetes API server for scangate's tests, benchmarks and demo.

It speaks the real wire protocol (JSON over HTTP/HTTPS) and enforces real authentication,
RBAC with escalation prevention, and TokenRequest rules, so that code tested against it behaves
the same against a real cluster. Run it with `python -m kubesim`; use it from pytest through
`kubesim.pytest_plugin`. It imports nothing from `app/`.
"""

"""The grant guard: a validating admission webhook that judges what a grant's identity does
inside the pods RBAC let it reach, which RBAC itself cannot express.

kube-apiserver calls it (registered by the chart's ValidatingWebhookConfiguration, limited by
`matchConditions` to grant ServiceAccounts) for `pods/exec`, `pods/attach` and
`pods/ephemeralcontainers`. The parts:
- `review.py`: the AdmissionReview wire format, parsed into plain data and answered.
- `decisions.py` and `debug_containers.py`: pure functions (request, grant, policy) -> verdict.
- `images.py`: the policy's `debug_images` patterns.
- `grant_lookup.py`: reads the grants and records each decision as an audit event.
- `decision_batch.py`: concurrent reviews judged and recorded together (group commit).
- `app.py`: the plain ASGI app of the webhook listener; `server.py` runs it beside the API.
"""

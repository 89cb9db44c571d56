"""Notifications: grant events POSTed to configured receivers (CloudEvents or Slack), signed,
delivered at least once through an outbox and never in a request's way.

    settings     `notifications:` in the configuration (app/settings_notifications.py)
    events.py    which notification event an audit event is
    targets.py   the targets in force (`NotificationTargets`, swapped by a reload)
    outbox.py    outbox rows written in the same transaction as their audit event
    queue.py     the worker's claims and settlements (per-grant order, leases)
    payloads.py  CloudEvents and Slack bodies, the HMAC signature
    worker.py    the background delivery worker (`NotificationWorker`)
"""

from app.notifications.outbox import attach_outbox
from app.notifications.targets import NotificationTargets
from app.notifications.worker import NotificationWorker

__all__ = ["NotificationTargets", "NotificationWorker", "attach_outbox"]

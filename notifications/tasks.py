"""Celery tasks for reminders; the logic lives in notifications.reminders.

beat runs `plan_reminders` once a day (it writes the day's reminders and fans their
batches out as `send_reminder_batch` tasks) and `retry_notifications` every minute.
A batch task is idempotent: a redelivered one (acks_late, a worker killed mid-batch)
claims nothing that is sent or leased, and what it re-sends carries the same
transactionId, which the provider does not deliver twice.
"""

from celery import shared_task

from notifications import reminders
from notifications.reminders import (  # re-exported: the commands' and tests' entry points
    KIND,
    claim,
    reminder_text,
    retry_pending,
    send_batch,
    send_reminder,
)

__all__ = [
    "KIND",
    "claim",
    "plan_reminders",
    "reminder_text",
    "retry_notifications",
    "retry_pending",
    "send_batch",
    "send_reminder",
    "send_reminder_batch",
]


def fan_out(ids):
    batches = reminders.batches(ids)
    for batch in batches:
        send_reminder_batch.delay(batch)
    return len(batches)


@shared_task(name="notifications.tasks.plan_reminders")
def plan_reminders(day=None):
    """Write today's reminders and queue one task per batch; returns the counts."""
    expired = reminders.expire_stale()
    queued = []
    planned, _ = reminders.plan(
        day and reminders.parse_day(day), on_chunk=lambda ids: queued.append(fan_out(ids))
    )
    return {"planned": planned["planned"], "batches": sum(queued), "expired": expired}


@shared_task(name="notifications.tasks.send_reminder_batch")
def send_reminder_batch(ids):
    return reminders.send_batch(ids)


@shared_task(name="notifications.tasks.retry_notifications")
def retry_notifications():
    """Queue the due retries (backoff elapsed, or a lease whose holder is gone)."""
    expired = reminders.expire_stale()
    return {"batches": fan_out(reminders.due_ids()), "expired": expired}

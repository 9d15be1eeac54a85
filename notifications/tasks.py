"""Todo reminders: one push per user with unfinished todos, once a day, nothing lost."""

import logging
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications import todos
from notifications.models import NotificationLog
from notifications.push import PushError, PushService

logger = logging.getLogger(__name__)
KIND = "todo_reminder"


def reminder_text(count):
    return f"You have {count} unfinished todo{'s' if count != 1 else ''}"


def send_reminder(today=None, dry_run=False):
    """Remind every active user of ours about their unfinished todos; returns a summary."""
    today = today or timezone.localdate()
    response = todos.get_todos()
    if response is None:
        raise todos.TodoApiError("the todo API answered with an error status")
    counts = Counter(
        todo["userId"]
        for todo in todos.uncompleted(response)
        if isinstance(todo.get("userId"), int)
    )
    users = get_user_model().objects.filter(is_active=True, id__in=counts).order_by("id")
    planned = [(user, reminder_text(counts[user.id])) for user in users]
    if dry_run:
        return {"would_send": [(user.pk, text) for user, text in planned], "sent": 0, "pending": 0}
    for user, text in planned:
        NotificationLog.objects.get_or_create(
            user=user, kind=KIND, day=today, defaults={"text": text}
        )
    due = NotificationLog.objects.filter(kind=KIND, day=today, user__in=users).exclude(
        status="sent"
    )
    return send_logs(due)


def retry_pending():
    """Send reminders left pending or failed by earlier runs (up to the attempt limit)."""
    due = NotificationLog.objects.filter(
        status__in=["pending", "failed"], attempts__lt=settings.NOTIFICATIONS_MAX_ATTEMPTS
    )
    return send_logs(due)


def claim(logs):
    """The logs this run may send: each is taken by bumping `attempts` from the value read.

    Two overlapping runs (cron firing while the last one is still sending) read the same
    pending rows; only one of them wins each row, so no reminder goes out twice.
    """
    claimed = []
    for log in logs:
        won = (
            NotificationLog.objects.filter(pk=log.pk, attempts=log.attempts)
            .exclude(status="sent")
            .update(attempts=F("attempts") + 1)
        )
        if won:
            log.attempts += 1
            claimed.append(log)
    return claimed


def send_logs(queryset):
    logs = claim(queryset.order_by("id"))
    sent = 0
    size = max(1, settings.PUSH_BATCH_SIZE)
    for start in range(0, len(logs), size):
        batch = logs[start : start + size]
        notifications = [
            {"text": log.text, "conditions": ["UserID", "EQ", log.user_id]} for log in batch
        ]
        try:
            codes = PushService().create_message(notifications)
        except PushError as error:
            status = "pending" if error.retryable else "failed"
            logger.warning("push batch of %d not sent (%s): %s", len(batch), status, error)
            NotificationLog.objects.filter(pk__in=[log.pk for log in batch]).update(
                status=status, last_error=str(error)[:500]
            )
            continue
        codes = codes if isinstance(codes, list) else []
        with transaction.atomic():
            for index, log in enumerate(batch):
                log.status = "sent"
                log.sent_at = timezone.now()
                log.last_error = ""
                log.message_code = str(codes[index]) if index < len(codes) else ""
                log.save(update_fields=["status", "sent_at", "last_error", "message_code"])
        sent += len(batch)
    return {"sent": sent, "pending": len(logs) - sent, "would_send": []}

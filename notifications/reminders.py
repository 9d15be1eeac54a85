"""Todo reminders: planned once a day, sent in leased batches, each delivered once.

The services behind the management commands and the Celery tasks (notifications.tasks):

- `plan(today)` writes the day's NotificationLog rows in bulk (one per active user with
  unfinished todos; a second plan the same day adds nothing) and returns the due ids.
- `send_batch(ids)` claims the claimable ones with ONE UPDATE (status `sending`, a random
  lease token, a lease expiry), calls createMessage once with a stable `transactionId`
  per log, and records the outcome with one bulk UPDATE. Two overlapping runs, or a
  redelivered Celery task, cannot both claim a log: the UPDATE's WHERE is re-checked on
  the row it locks, so the loser claims nothing.
- A failed call puts the logs back to `pending` (`failed` for errors a retry will not
  fix) with an exponential backoff in `next_attempt_at`; a log still unsent when its
  day is over becomes `expired` (counted in summaries, filterable in the admin).
"""

import logging
import secrets
from collections import Counter
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone

from notifications import todos
from notifications.models import NotificationLog
from notifications.push import PushError, PushService

logger = logging.getLogger("notifications.tasks")
KIND = "todo_reminder"
Status = NotificationLog.Status
UNSENT = [Status.PENDING, Status.FAILED, Status.SENDING]


def reminder_text(count):
    return f"You have {count} unfinished todo{'s' if count != 1 else ''}"


def end_of_day(day):
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def summary(**counts):
    base = {"planned": 0, "sent": 0, "pending": 0, "failed": 0, "expired": 0, "busy": 0}
    base.update(counts)
    base.setdefault("would_send", [])
    return base


def merge(total, part):
    for key, value in part.items():
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
    return total


def claimable(now):
    """Logs a run may take now: due pending/failed ones, and leases whose holder is gone."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return (
        (Q(status=Status.PENDING) & due)
        | (Q(status=Status.FAILED, attempts__lt=settings.NOTIFICATIONS_MAX_ATTEMPTS) & due)
        | Q(status=Status.SENDING, lease_expires_at__lte=now)
    )


def expire_stale(now=None):
    """Mark `expired` every reminder whose day is over and that was never sent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    stale = NotificationLog.objects.filter(day__lt=today, status__in=UNSENT).exclude(
        status=Status.SENDING,
        lease_expires_at__gt=now,  # still being sent: let it finish
    )
    expired = stale.update(
        status=Status.EXPIRED, lease_token="", lease_expires_at=None, next_attempt_at=None
    )
    if expired:
        logger.warning("%d reminders expired unsent (their day is over)", expired)
    return expired


def planned_users(response):
    counts = Counter(
        todo["userId"]
        for todo in todos.uncompleted(response)
        if isinstance(todo.get("userId"), int)
    )
    active = set(
        get_user_model().objects.filter(is_active=True).values_list("id", flat=True).iterator()
    )
    return [
        (user_id, reminder_text(counts[user_id])) for user_id in sorted(counts) if user_id in active
    ]


def plan(today=None, dry_run=False):
    """Write today's reminders (idempotent); returns (summary, ids due for sending)."""
    today = today or timezone.localdate()
    response = todos.get_todos()
    if response is None:
        raise todos.TodoApiError("the todo API answered with an error status")
    planned = planned_users(response)
    if dry_run:
        return summary(would_send=planned), []
    NotificationLog.objects.bulk_create(
        [
            NotificationLog(user_id=user_id, kind=KIND, day=today, text=text)
            for user_id, text in planned
        ],
        batch_size=2000,
        ignore_conflicts=True,  # planned earlier today: kept as it is
    )
    ids = list(
        NotificationLog.objects.filter(kind=KIND, day=today, status__in=UNSENT)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return summary(planned=len(planned)), ids


def due_ids(now=None):
    """Ids of reminders, of today, that a retry may send now."""
    now = now or timezone.now()
    return list(
        NotificationLog.objects.filter(day__gte=timezone.localdate(now))
        .filter(claimable(now))
        .order_by("id")
        .values_list("id", flat=True)
    )


def batches(ids):
    size = max(1, settings.PUSH_BATCH_SIZE)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def claim(ids, now=None):
    """Lease the claimable logs among `ids` with one UPDATE; returns the logs this run won."""
    now = now or timezone.now()
    token = secrets.token_hex(16)
    won = (
        NotificationLog.objects.filter(pk__in=ids, day__gte=timezone.localdate(now))
        .filter(claimable(now))
        .update(
            status=Status.SENDING,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )
    if not won:
        return []
    return list(NotificationLog.objects.filter(pk__in=ids, lease_token=token).order_by("id"))


def backoff(attempts, ambiguous=False):
    delay = min(
        settings.NOTIFICATIONS_RETRY_MAX_SECONDS,
        settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    if ambiguous:  # the provider may have it: retry while it still de-duplicates
        delay = min(delay, settings.NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS)
    return timedelta(seconds=delay)


def send_batch(ids, now=None):
    """Claim, send (one createMessage) and record one batch of reminders; returns a summary."""
    now = now or timezone.now()
    logs = claim(ids, now)
    busy = len(ids) - len(logs)
    if not logs:
        return summary(busy=busy)
    notifications = [
        {
            "text": log.text,
            "conditions": ["UserID", "EQ", log.user_id],
            "transaction_id": str(log.transaction_id),
        }
        for log in logs
    ]
    fields = ["status", "lease_token", "lease_expires_at", "next_attempt_at", "last_error"]
    try:
        codes = PushService().create_message(notifications)
    except PushError as error:
        ambiguous = getattr(error, "ambiguous", False)
        counts = Counter()
        for log in logs:
            retry_at = now + backoff(log.attempts, ambiguous)
            if retry_at >= end_of_day(log.day):
                log.status = Status.EXPIRED  # no longer useful: visible, never silently dropped
            elif error.retryable:
                log.status = Status.PENDING
            else:
                log.status = Status.FAILED
            log.next_attempt_at = retry_at if log.status != Status.EXPIRED else None
            log.lease_token, log.lease_expires_at = "", None
            log.last_error = str(error)[:500]
            counts[log.status] += 1
        NotificationLog.objects.bulk_update(logs, fields)
        logger.warning(
            "push batch of %d not sent (%s): %s",
            len(logs),
            ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            error,
        )
        return summary(
            busy=busy,
            pending=counts[Status.PENDING],
            failed=counts[Status.FAILED],
            expired=counts[Status.EXPIRED],
        )
    codes = codes if isinstance(codes, list) else []
    sent_at = timezone.now()
    for index, log in enumerate(logs):
        log.status, log.sent_at = Status.SENT, sent_at
        log.lease_token, log.lease_expires_at, log.next_attempt_at = "", None, None
        log.last_error = ""
        log.message_code = str(codes[index]) if index < len(codes) else ""
    NotificationLog.objects.bulk_update(logs, [*fields, "sent_at", "message_code"])
    return summary(busy=busy, sent=len(logs))


def send_all(ids, now=None):
    total = summary()
    for batch in batches(ids):
        merge(total, send_batch(batch, now))
    return total


def send_reminder(today=None, dry_run=False, now=None):
    """The daily run in one process (the `send_reminders` command): plan, then send."""
    now = now or timezone.now()
    expired = 0 if dry_run else expire_stale(now)
    planned, ids = plan(today or timezone.localdate(now), dry_run=dry_run)
    if dry_run:
        return planned
    total = send_all(ids, now)
    total["planned"] = planned["planned"]
    total["expired"] += expired
    return total


def retry_pending(now=None):
    """Send what earlier runs left unsent and is due (backoff), expiring past days' reminders."""
    now = now or timezone.now()
    expired = expire_stale(now)
    total = send_all(due_ids(now), now)
    total["expired"] += expired
    return total


def parse_day(value):
    return value if not isinstance(value, str) else datetime.strptime(value, "%Y-%m-%d").date()


def describe(total):
    """One line for the commands: every reminder is accounted for, expired ones included."""
    return (
        f"sent {total['sent']}, left pending {total['pending']}, failed {total['failed']}, "
        f"expired {total['expired']}, taken by another run {total['busy']}"
    )

"""Todo reminders: planned once a day, sent in leased batches, each delivered once.

The services behind the management commands and the Celery tasks (notifications.tasks):

- `plan(today)` writes the day's NotificationLog rows in bulk (one per active user with
  unfinished todos; a second plan the same day adds nothing) and returns the due ids.
- `send_batch(ids)` (one task: NOTIFICATIONS_TASK_BATCH reminders) claims the claimable
  ones with ONE UPDATE (status `sending`, a random lease token, a lease expiry), calls
  createMessage per PUSH_BATCH_SIZE with a stable `transactionId` per log, and records
  the outcome with one UPDATE. Two overlapping runs, or a redelivered Celery task, cannot
  both claim a log: the UPDATE's WHERE is re-checked on the row it locks, so the loser
  claims nothing.
- A failed call puts the logs back to `pending` (`failed` for errors a retry will not
  fix) with an exponential backoff in `next_attempt_at`; a log still unsent when its
  day is over becomes `expired` (counted in summaries, filterable in the admin).
"""

import logging
import secrets
from collections import Counter, defaultdict
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery
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


def plan(today=None, dry_run=False, on_chunk=None):
    """Write today's reminders (idempotent); returns (summary, ids due for sending).

    Written in chunks; each chunk's ids go to `on_chunk` as soon as they are committed,
    so the Celery plan queues batches for the workers while it writes the next chunk.
    """
    today = today or timezone.localdate()
    response = todos.get_todos()
    if response is None:
        raise todos.TodoApiError("the todo API answered with an error status")
    planned = planned_users(response)
    if dry_run:
        return summary(would_send=planned), []
    size = 900 if connection.vendor == "sqlite" else 5000  # SQLite's bound parameters
    ids = []
    for start in range(0, len(planned), size):
        chunk = planned[start : start + size]
        insert_logs(today, chunk, size)
        chunk_ids = list(
            NotificationLog.objects.filter(
                kind=KIND,
                day=today,
                status__in=UNSENT,
                user_id__in=[user_id for user_id, _ in chunk],
            )
            .order_by("id")
            .values_list("id", flat=True)
        )
        if on_chunk:
            on_chunk(chunk_ids)
        ids.extend(chunk_ids)
    return summary(planned=len(planned)), ids


def insert_logs(today, chunk, size):
    """INSERT the chunk's reminders; one planned earlier today is kept as it is."""
    if connection.vendor == "postgresql":  # set-based: no model instance per row
        table = connection.ops.quote_name(NotificationLog._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, kind, day, text, status, attempts, "  # noqa: S608 (no user input)
                "transaction_id, lease_token, message_code, last_error, created_at) "
                "SELECT u, %s, %s, t, %s, 0, gen_random_uuid(), '', '', '', %s "
                "FROM unnest(%s::bigint[], %s::text[]) AS x(u, t) "
                "ON CONFLICT (user_id, kind, day) DO NOTHING",
                [KIND, today, Status.PENDING, timezone.now(),
                 [user_id for user_id, _ in chunk], [text for _, text in chunk]],
            )  # fmt: skip
        return
    NotificationLog.objects.bulk_create(
        [NotificationLog(user_id=u, kind=KIND, day=today, text=text) for u, text in chunk],
        batch_size=size,
        ignore_conflicts=True,
    )


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
    """The ids split into task-sized batches (NOTIFICATIONS_TASK_BATCH reminders each)."""
    size = max(1, settings.NOTIFICATIONS_TASK_BATCH)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def claim(ids, now=None):
    """Lease the claimable logs among `ids` with one UPDATE; returns the logs this run won."""
    now = now or timezone.now()
    token = secrets.token_hex(16)
    claimable_now = NotificationLog.objects.filter(
        pk__in=ids, day__gte=timezone.localdate(now)
    ).filter(claimable(now))
    lease = {
        "status": Status.SENDING,
        "lease_token": token,
        "lease_expires_at": now + lease_duration(len(ids)),
        "attempts": F("attempts") + 1,
    }
    if connection.vendor == "postgresql":
        # One statement: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
        # RETURNING. Rows another claim is locking right now are skipped, not waited
        # for, so overlapping claims never queue behind each other or deadlock.
        inner, params = claimable_now.order_by().values("pk").query.sql_with_params()
        locked = NotificationLog.objects.filter(
            pk__in=RawSQL(f"{inner} FOR UPDATE SKIP LOCKED", params)  # noqa: S611 (ORM SQL, bound params)
        )
        return sorted(update_returning(locked, lease), key=lambda log: log.pk)
    if not claimable_now.update(**lease):
        return []
    return list(NotificationLog.objects.filter(pk__in=ids, lease_token=token).order_by("id"))


def lease_duration(count):
    """Long enough for every createMessage call of a batch to time out, plus a margin."""
    calls = -(-count // max(1, settings.PUSH_BATCH_SIZE))
    return timedelta(
        seconds=settings.NOTIFICATIONS_LEASE_SECONDS + calls * settings.PUSH_TIMEOUT_SECONDS
    )


def update_returning(queryset, values):
    """queryset.update(**values), returning the updated rows (PostgreSQL's RETURNING)."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    fields = [field.attname for field in NotificationLog._meta.concrete_fields]
    columns = ", ".join(
        connection.ops.quote_name(f.column) for f in NotificationLog._meta.concrete_fields
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {columns}", params)
        rows = cursor.fetchall()
    converters = [
        (index, field.get_db_converters(connection) + connection.ops.get_db_converters(field))
        for index, field in enumerate(NotificationLog._meta.concrete_fields)
    ]
    logs = []
    for row in rows:
        row = list(row)
        for index, functions in converters:
            for convert in functions:
                row[index] = convert(
                    row[index], NotificationLog._meta.concrete_fields[index], connection
                )
        logs.append(NotificationLog.from_db(queryset.db, fields, row))
    return logs


def backoff(attempts, ambiguous=False):
    delay = min(
        settings.NOTIFICATIONS_RETRY_MAX_SECONDS,
        settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    if ambiguous:  # the provider may have it: retry while it still de-duplicates
        delay = min(delay, settings.NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS)
    return timedelta(seconds=delay)


def send_batch(ids, now=None):
    """Claim one task's reminders, send them (createMessage per PUSH_BATCH_SIZE), record.

    The claim is one UPDATE, the outcome one UPDATE for the delivered ones and one per
    failure outcome. After a failed call the rest of the batch is not tried (the provider
    is down or refusing); it goes back with the same backoff.
    """
    now = now or timezone.now()
    logs = claim(ids, now)
    busy = len(ids) - len(logs)
    if not logs:
        return summary(busy=busy)
    token = logs[0].lease_token
    size = max(1, settings.PUSH_BATCH_SIZE)
    delivered, failure = {}, None
    service = PushService()
    for start in range(0, len(logs), size):
        part = logs[start : start + size]
        notifications = [
            {
                "text": log.text,
                "conditions": ["UserID", "EQ", log.user_id],
                "transaction_id": str(log.transaction_id),
            }
            for log in part
        ]
        try:
            codes = service.create_message(notifications)
        except PushError as error:
            failure = record_failure(logs[start:], token, error, now, busy)
            break
        codes = codes if isinstance(codes, list) else []
        delivered.update(
            {log.pk: str(codes[i]) if i < len(codes) else "" for i, log in enumerate(part)}
        )
    if delivered:
        # Recorded even if our lease lapsed meanwhile: a second holder's repeat of the
        # same transactionIds is not delivered again, and records the same outcome.
        record_sent(delivered)
    result = failure or summary(busy=busy)
    result["sent"] = len(delivered)
    return result


def record_failure(logs, token, error, now, busy):
    """Back to pending/failed with a backoff, or expired past its day: one UPDATE per outcome."""
    ambiguous = getattr(error, "ambiguous", False)
    outcomes = defaultdict(list)
    for log in logs:
        retry_at = now + backoff(log.attempts, ambiguous)
        if retry_at >= end_of_day(log.day):
            outcomes[Status.EXPIRED, None].append(log.pk)  # visible, never silently dropped
        else:
            status = Status.PENDING if error.retryable else Status.FAILED
            outcomes[status, retry_at].append(log.pk)
    counts = Counter()
    for (status, retry_at), ids in outcomes.items():
        NotificationLog.objects.filter(pk__in=ids, lease_token=token).update(
            status=status,
            next_attempt_at=retry_at,
            lease_token="",
            lease_expires_at=None,
            last_error=str(error)[:500],
        )
        counts[status] += len(ids)
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


def record_sent(codes):
    """Mark {log id: message code} sent: one UPDATE ... FROM VALUES on PostgreSQL."""
    sent_at = timezone.now()
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(NotificationLog._meta.db_table)
        values = ", ".join(["(%s::bigint, %s)"] * len(codes))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS n SET status = %s, sent_at = %s, lease_token = '', "  # noqa: S608 (no user input)
                "lease_expires_at = NULL, next_attempt_at = NULL, last_error = '', "
                f"message_code = v.code FROM (VALUES {values}) AS v(id, code) WHERE n.id = v.id",
                [Status.SENT, sent_at, *[item for pair in codes.items() for item in pair]],
            )
        return
    with transaction.atomic():  # one commit for the outcome
        NotificationLog.objects.filter(pk__in=list(codes)).update(
            status=Status.SENT,
            sent_at=sent_at,
            lease_token="",
            lease_expires_at=None,
            next_attempt_at=None,
            last_error="",
        )
        NotificationLog.objects.bulk_update(
            [NotificationLog(pk=pk, message_code=code) for pk, code in codes.items()],
            ["message_code"],
        )


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

"""Every reminder delivered exactly once, whatever the push provider does (issue 9 items 6-7).

Each scenario counts deliveries per user in the fake provider's outbox. Time is passed
explicitly (`now=`) so backoff, leases and the end of the day are exact; the fake's
de-duplication window runs on its own clock (real time unless a test moves it).
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from unittest import mock, skipUnless

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from fakes.server import FakeServer
from notifications import reminders
from notifications.models import NotificationLog
from notifications.push import PushService, PushUnavailable
from notifications.tasks import plan_reminders, retry_pending, send_reminder, send_reminder_batch
from notifications.testing import (
    TRANSACTION_ID_WINDOW_SECONDS,
    FakeNotificationServicesMixin,
    FakePushProvider,
    FakeTodoApi,
    fake_push,
    fake_todos,
)

User = get_user_model()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
USERS = list(range(1, 11))


def seconds(n):
    return T0 + timedelta(seconds=n)


class Scenario:
    """Ten users with unfinished todos; reminders go out in batches of four (3 calls)."""

    def setUp(self):
        super().setUp()
        User.objects.bulk_create([User(id=i, username=f"user{i}") for i in USERS])
        self.todo_api.todos = [
            {"userId": i, "id": i, "title": "x", "completed": False} for i in USERS
        ]
        self.enterContext(override_settings(PUSH_BATCH_SIZE=4, NOTIFICATIONS_TASK_BATCH=4))

    def creates(self):
        return [r for r in self.push.requests if r[0] == "/createMessage"]

    def assert_each_delivered_once(self):
        self.assertEqual(self.push.deliveries_per_user(), dict.fromkeys(USERS, 1))
        self.assertEqual(set(NotificationLog.objects.values_list("status", flat=True)), {"sent"})


class ProviderFaultTests(Scenario, FakeNotificationServicesMixin, TestCase):
    def run_with_fault(self, fault):
        self.push.faults.add("POST /createMessage", fault)
        with self.assertLogs("notifications.tasks", "WARNING"):
            first = send_reminder(now=T0)
        self.assertEqual((first["sent"], first["pending"]), (6, 4), fault)
        self.assertEqual(retry_pending(now=seconds(5))["sent"], 0, "backoff not elapsed yet")
        second = retry_pending(now=seconds(settings.NOTIFICATIONS_RETRY_BASE_SECONDS + 1))
        self.assertEqual(second["sent"], 4, fault)
        self.assert_each_delivered_once()
        return first, second

    def test_provider_500(self):
        self.run_with_fault("api_error")
        self.assertEqual(self.push.duplicates, [], "nothing had been performed")

    def test_provider_429(self):
        self.run_with_fault("rate_limit")

    def test_timeout_before_the_request_is_performed(self):
        self.run_with_fault("timeout")

    def test_lost_answer_is_retried_with_the_same_transaction_ids(self):
        self.run_with_fault("lost_response")
        first_batch = NotificationLog.objects.order_by("id")[:4]
        self.assertEqual(self.push.duplicates, [str(log.transaction_id) for log in first_batch])
        codes = {m["transactionId"]: m["code"] for m in self.push.outbox}
        for log in first_batch:
            self.assertEqual(log.message_code, codes[str(log.transaction_id)])
            self.assertEqual(log.attempts, 2)

    def test_answer_slower_than_the_timeout(self):
        self.run_with_fault("slow_response")
        self.assertEqual(len(self.push.duplicates), 4)

    def test_an_ambiguous_failure_is_retried_inside_the_dedup_window(self):
        self.push.faults.add("POST /createMessage", "lost_response", times=3)
        with self.assertLogs("notifications.tasks", "WARNING"):
            send_reminder(now=T0)
            for log in NotificationLog.objects.exclude(status="sent"):
                self.assertLessEqual(
                    log.next_attempt_at - T0,
                    timedelta(seconds=settings.NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS),
                )
                self.assertLess(
                    settings.NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS,
                    TRANSACTION_ID_WINDOW_SECONDS,
                )
            retry_pending(now=seconds(61))
            retry_pending(now=seconds(122))
        retry_pending(now=seconds(183))
        self.assert_each_delivered_once()

    def test_outage_of_seven_failed_calls_then_recovery_the_same_day(self):
        self.enterContext(override_settings(PUSH_BATCH_SIZE=100, NOTIFICATIONS_TASK_BATCH=100))
        self.push.faults.add("POST /createMessage", "api_error", times=7)
        now = T0
        with self.assertLogs("notifications.tasks", "WARNING") as logs:
            send_reminder(now=now)
            for _ in range(6):
                now = NotificationLog.objects.first().next_attempt_at
                self.assertEqual(retry_pending(now=now)["pending"], 10)
        self.assertEqual(len(logs.records), 7)
        now = NotificationLog.objects.first().next_attempt_at
        self.assertEqual(now.date(), T0.date(), "backoff keeps it within its day")
        self.assertEqual(retry_pending(now=now)["sent"], 10)
        self.assertEqual(len(self.push.faults), 0, "all seven failures were used")
        self.assertEqual(len(self.creates()), 1, "the one call that got through")
        self.assert_each_delivered_once()
        self.assertEqual(set(NotificationLog.objects.values_list("attempts", flat=True)), {8})

    def test_an_outage_all_day_expires_the_reminders_visibly(self):
        self.enterContext(override_settings(PUSH_BATCH_SIZE=100, NOTIFICATIONS_TASK_BATCH=100))
        self.push.faults.add("POST /createMessage", "api_error", times=1000)
        now = T0
        expired = 0
        with self.assertLogs("notifications.tasks", "WARNING"):
            summary = send_reminder(now=now)
            while not expired:
                now = NotificationLog.objects.first().next_attempt_at
                summary = retry_pending(now=now)
                expired = summary["expired"]
        self.assertEqual(now.date(), T0.date())
        self.assertEqual(expired, 10)
        self.assertEqual(set(NotificationLog.objects.values_list("status", flat=True)), {"expired"})
        self.assertEqual(self.push.outbox, [])
        self.assertIn("expired 10", reminders.describe(summary))
        self.push.faults.clear()
        self.assertEqual(retry_pending(now=now + timedelta(days=1))["sent"], 0, "never resent")

    def test_reminders_left_unsent_yesterday_expire_on_the_next_run(self):
        self.push.faults.add("POST /createMessage", "api_error", times=3)
        with self.assertLogs("notifications.tasks", "WARNING"):
            send_reminder(now=T0)
        with self.assertLogs("notifications.tasks", "WARNING"):
            summary = send_reminder(now=T0 + timedelta(days=1))
        self.assertEqual(summary["expired"], 10)
        self.assertEqual(summary["sent"], 10, "today's reminders are new ones")
        self.assertEqual(NotificationLog.objects.filter(status="expired").count(), 10)

    def test_the_admin_shows_expired_reminders(self):
        log = NotificationLog.objects.create(
            user_id=1, day=T0.date(), text="You have 1 unfinished todo", status="expired"
        )
        admin = User.objects.create_superuser("admin", "a@example.com", "pw-0123456789", id=1000)
        self.client.force_login(admin)
        url = reverse("admin:notifications_notificationlog_changelist")
        response = self.client.get(url, {"status__exact": "expired"})
        self.assertContains(response, f'href="/admin/notifications/notificationlog/{log.pk}/')
        self.assertContains(response, "Expired")
        self.assertNotContains(self.client.get(url, {"status__exact": "sent"}), "You have 1")


class OverlapTests(Scenario, FakeNotificationServicesMixin, TestCase):
    def test_runs_started_while_the_first_is_still_sending(self):
        started = []

        def second_and_third_runs(path, request):
            if not started:  # inside run A's first call: the provider is slow
                started.append(True)
                self.assertEqual(send_reminder(now=seconds(0.7))["busy"], 4)
                retry_pending(now=seconds(0.8))

        self.push.on_request = second_and_third_runs
        first = send_reminder(now=T0)
        self.assertEqual(first["sent"], 4, "run B took the other two batches")
        self.assertEqual(first["busy"], 6)
        self.assert_each_delivered_once()
        self.assertEqual(self.push.duplicates, [], "leases alone kept them apart")

    def test_a_lease_whose_holder_died_is_taken_over_after_it_lapses(self):
        reminders.plan(T0.date())
        ids = list(NotificationLog.objects.order_by("id").values_list("id", flat=True))
        taken = reminders.claim(ids, T0)  # the holder delivered, then died before recording
        PushService().create_message(
            [
                {"text": log.text, "conditions": ["UserID", "EQ", log.user_id],
                 "transaction_id": str(log.transaction_id)}
                for log in taken
            ]
        )  # fmt: skip
        self.assertEqual(retry_pending(now=seconds(30))["sent"], 0, "the lease still holds")
        lapse = reminders.lease_duration(len(ids)).total_seconds() + 1
        self.assertEqual(retry_pending(now=seconds(lapse))["sent"], 10)
        self.assert_each_delivered_once()
        self.assertEqual(len(self.push.duplicates), 10)

    def test_claims_and_records_in_bulk(self):
        reminders.plan(T0.date())
        ids = list(NotificationLog.objects.values_list("id", flat=True))[:4]
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(reminders.send_batch(ids, T0)["sent"], 4)
        statements = [q["sql"].split()[0] for q in queries if "SAVEPOINT" not in q["sql"].upper()]
        if connection.vendor == "postgresql":  # UPDATE ... RETURNING; UPDATE ... FROM VALUES
            self.assertEqual(statements, ["UPDATE", "UPDATE"])
        else:  # lease, read the lease back, record the outcome, the message codes
            self.assertEqual(statements, ["UPDATE", "SELECT", "UPDATE", "UPDATE"])
        log = NotificationLog.objects.get(pk=ids[0])
        self.assertEqual((log.status, log.attempts, log.lease_token), ("sent", 1, ""))
        self.assertEqual(log.message_code, self.push.outbox[-1]["code"])


class TaskBatchTests(Scenario, FakeNotificationServicesMixin, TestCase):
    def test_a_task_sends_several_calls_and_stops_at_the_first_failure(self):
        reminders.plan(T0.date())
        ids = sorted(NotificationLog.objects.values_list("id", flat=True))

        def second_call_times_out(path, request):
            self.push.faults.add("POST /createMessage", "timeout")
            self.push.on_request = None

        self.push.on_request = second_call_times_out  # the first call gets through
        with self.assertLogs("notifications.tasks", "WARNING"):
            result = reminders.send_batch(ids, T0)
        self.assertEqual((result["sent"], result["pending"]), (4, 6))
        self.assertEqual(len(self.creates()), 1, "the third call was not tried")
        self.assertEqual(reminders.lease_duration(10), timedelta(seconds=30 + 3 * 10))
        retry_pending(now=seconds(61))
        self.assert_each_delivered_once()


class CeleryTaskTests(Scenario, FakeNotificationServicesMixin, TestCase):
    """Eager mode (no broker): the same tasks the workers run."""

    def test_plan_fans_out_batches_and_a_redelivered_batch_sends_nothing(self):
        self.assertTrue(settings.CELERY_TASK_ALWAYS_EAGER)
        with mock.patch.object(send_reminder_batch, "delay", wraps=send_reminder_batch) as delay:
            result = plan_reminders.delay().get()
        self.assertEqual(result, {"planned": 10, "batches": 3, "expired": 0})  # tasks of 4
        self.assertEqual([len(call.args[0]) for call in delay.call_args_list], [4, 4, 2])
        self.assert_each_delivered_once()
        again = send_reminder_batch.delay(delay.call_args_list[0].args[0]).get()
        self.assertEqual((again["sent"], again["busy"]), (0, 4))
        plan_reminders.delay().get()
        self.assert_each_delivered_once()


class FakeProviderDedupTests(TestCase):
    """The fake honours transactionId as Pushwoosh documents it (5 minutes)."""

    def setUp(self):
        self.push = self.enterContext(fake_push())
        self.now = 1000.0
        self.push.clock = lambda: self.now

    def send(self, transaction_id):
        return PushService().create_message(
            [{"text": "hi", "conditions": ["UserID", "EQ", 7], "transaction_id": transaction_id}]
        )

    def test_a_repeat_within_five_minutes_is_answered_but_not_delivered(self):
        first = self.send("t-1")
        self.now += TRANSACTION_ID_WINDOW_SECONDS - 1
        self.assertEqual(self.send("t-1"), first, "answered with the first message's code")
        self.assertEqual(self.push.received_by(7), ["hi"])
        self.assertEqual(self.push.duplicates, ["t-1"])
        self.send("t-2")
        self.assertEqual(len(self.push.received_by(7)), 2, "another key is another message")

    def test_after_the_window_the_key_is_forgotten(self):
        self.send("t-1")
        self.now += TRANSACTION_ID_WINDOW_SECONDS
        self.send("t-1")
        self.assertEqual(len(self.push.received_by(7)), 2)

    def test_transaction_id_must_be_a_string(self):
        provider = FakePushProvider()
        body = (
            b'{"request": {"application": "%s", "auth": "%s", "notifications": '
            b'[{"content": "x", "send_date": "now", "transactionId": 5}]}}'
            % (provider.application.encode(), provider.auth.encode())
        )
        answer = provider.handle("POST", "/createMessage", "", body, {})
        self.assertIn(b'"status_code":210', answer.body)
        self.assertEqual(provider.outbox, [])


class SlowAnswerOverHttpTests(Scenario, TestCase):
    """A real client timeout: the server performs the request, then answers too late."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.push, cls.todo_api = FakePushProvider(), FakeTodoApi()
        cls.server = FakeServer({"/push": cls.push, "/todos-api": cls.todo_api}).start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        self.push.reset()
        self.todo_api.reset()
        self.enterContext(
            override_settings(
                PUSH_API_URL=self.server.url + "/push/",
                PUSH_APPLICATION=self.push.application,
                PUSH_AUTH_KEY=self.push.auth,
                TODOS_API_URL=self.server.url + "/todos-api/",
                PUSH_TIMEOUT_SECONDS=0.2,
            )
        )
        super().setUp()

    def test_answer_slower_than_push_timeout_seconds(self):
        self.push.slow_response_delay = 0.5
        self.push.faults.add("POST /createMessage", "slow_response")
        with self.assertLogs("notifications.tasks", "WARNING") as logs:
            send_reminder(now=T0)
        self.assertIn("timed out", logs.output[0])
        retry_pending(now=seconds(settings.NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS))
        self.assert_each_delivered_once()
        self.assertEqual(len(self.push.duplicates), 4)


@skipUnless(connection.vendor == "postgresql", "real concurrent runs need PostgreSQL row locks")
class ConcurrentRunsTests(TransactionTestCase):
    """Two runs in two threads against a slow provider, as cron overlapping itself."""

    def test_two_overlapping_runs_deliver_each_reminder_once(self):
        User.objects.bulk_create([User(id=i, username=f"user{i}") for i in USERS])
        with fake_push() as push, fake_todos() as todo_api, override_settings(PUSH_BATCH_SIZE=2):
            todo_api.todos = [
                {"userId": i, "id": i, "title": "x", "completed": False} for i in USERS
            ]
            push.latency = 0.2
            errors = []

            def run(delay):
                try:
                    threading.Event().wait(delay)
                    send_reminder()
                    retry_pending()
                except Exception as error:  # reported below
                    errors.append(error)
                finally:
                    connection.close()

            threads = [threading.Thread(target=run, args=(d,)) for d in (0, 0.1, 0.25)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            self.assertEqual(errors, [])
            self.assertEqual(push.deliveries_per_user(), dict.fromkeys(USERS, 1))
            self.assertEqual(push.duplicates, [])
            self.assertEqual(NotificationLog.objects.filter(status="sent").count(), 10)

    def test_a_claim_skips_rows_another_claim_is_locking_instead_of_waiting(self):
        User.objects.bulk_create([User(id=i, username=f"user{i}") for i in USERS])
        logs = NotificationLog.objects.bulk_create(
            [NotificationLog(user_id=i, day=timezone.localdate(), text="x") for i in USERS]
        )
        locked, release = threading.Event(), threading.Event()

        def hold_a_row_lock():
            try:
                with transaction.atomic():
                    NotificationLog.objects.select_for_update().get(pk=logs[0].pk)
                    locked.set()
                    release.wait(10)
            finally:
                connection.close()

        holder = threading.Thread(target=hold_a_row_lock)
        holder.start()
        try:
            self.assertTrue(locked.wait(10))
            started = time.monotonic()
            won = reminders.claim([log.pk for log in logs])
            self.assertLess(time.monotonic() - started, 2, "did not wait for the lock")
        finally:
            release.set()
            holder.join(10)
        self.assertEqual(sorted(log.pk for log in won), sorted(log.pk for log in logs[1:]))
        self.assertEqual(NotificationLog.objects.get(pk=logs[0].pk).status, "pending")


class PushUnavailableTests(TestCase):
    def test_only_failures_after_the_request_was_written_are_ambiguous(self):
        with fake_push() as push:
            for fault, ambiguous in [("api_error", False), ("rate_limit", False),
                                     ("timeout", True), ("lost_response", True),
                                     ("slow_response", True)]:  # fmt: skip
                push.faults.add("POST /createMessage", fault)
                with self.assertRaises(PushUnavailable) as caught:
                    PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])
                self.assertEqual(caught.exception.ambiguous, ambiguous, fault)

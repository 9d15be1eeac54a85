"""The Celery app's configuration, and the migration that gave old reminders their keys."""

import uuid

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import SimpleTestCase, TransactionTestCase

from backend.celery import app


class CeleryConfigurationTests(SimpleTestCase):
    def test_beat_schedules_registered_tasks(self):
        app.loader.import_default_modules()
        names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
        self.assertEqual(
            names, {"notifications.tasks.plan_reminders", "notifications.tasks.retry_notifications"}
        )
        self.assertLessEqual(names | {"notifications.tasks.send_reminder_batch"}, set(app.tasks))

    def test_redelivery_settings(self):
        self.assertTrue(app.conf.task_acks_late)
        self.assertTrue(app.conf.task_reject_on_worker_lost)
        self.assertEqual(app.conf.worker_prefetch_multiplier, 1)
        visibility = app.conf.broker_transport_options["visibility_timeout"]
        self.assertGreater(visibility, 60, "far longer than a batch takes")

    def test_no_broker_means_eager(self):
        self.assertTrue(app.conf.task_always_eager, "tests and make run need no broker")
        self.assertEqual(app.conf.broker_url, "memory://")


class TransactionIdMigrationTests(TransactionTestCase):
    """0003 adds a unique transaction_id to a table that may already have reminders."""

    def test_existing_reminders_each_get_their_own_key(self):
        executor = MigrationExecutor(connection)
        executor.migrate([("notifications", "0001_initial")])
        old = executor.loader.project_state([("notifications", "0001_initial")]).apps
        User = old.get_model("auth", "User")
        Log = old.get_model("notifications", "NotificationLog")
        user = User.objects.create(username="before-0003")
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            Log.objects.create(user=user, day=day, text="x")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        with connection.cursor() as cursor:
            cursor.execute("SELECT transaction_id FROM notifications_notificationlog")
            keys = [row[0] for row in cursor.fetchall()]
        self.assertEqual(len(keys), 3)
        self.assertEqual(len({str(uuid.UUID(str(key))) for key in keys}), 3)

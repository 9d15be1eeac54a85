"""A real Celery worker on a real broker (Redis db 5) delivers the daily plan exactly once,
even when it is killed mid-run and restarted (issue 14 item 2). SLOW_TESTS=1; CI sets it.

The worker is another process, so it must open the *test* database: the test is a
TransactionTestCase (its rows are committed, not hidden in a test transaction) and the
worker gets a DATABASE_URL for the test database (on PostgreSQL `test_<name>`; on SQLite
the file settings.py uses for the test database when SLOW_TESTS=1, since an in-memory
database cannot be shared). The fake push provider and todo API are served over HTTP from
this process (backend.fakeservices), and the worker is pointed at them, so the outbox it
fills is the one this test reads.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from unittest import SkipTest, skipUnless

from celery import Celery
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TransactionTestCase

from fakes.server import FakeServer
from notifications.models import NotificationLog
from notifications.testing import FakePushProvider, FakeTodoApi

User = get_user_model()
SLOW = os.environ.get("SLOW_TESTS", "").lower() in ("1", "true", "yes", "on")
BROKER_URL = "redis://127.0.0.1:6379/5"  # this test's Redis database; flushed before and after
USERS = 300
ROOT = Path(settings.BASE_DIR)


def redis_or_skip():
    import redis

    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        raise SkipTest(f"Redis is not reachable at {BROKER_URL} ({error}); CI runs Redis") from None
    return client


def worker_database_url():
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        return f"sqlite:///{db['NAME']}"
    raise SkipTest("the worker process cannot open an in-memory SQLite test database")


@skipUnless(SLOW, "starts real Celery workers (~20 s): set SLOW_TESTS=1 (CI does)")
class CeleryWorkerTests(TransactionTestCase):
    def setUp(self):
        self.redis = redis_or_skip()
        # A queue of this run's own: two suites running at once (or a developer's worker on
        # db 5) never take or flush each other's tasks.
        self.queue = f"test-reminders-{uuid.uuid4().hex}"
        self.addCleanup(self.redis.delete, self.queue)
        self.push, self.todo_api = FakePushProvider(), FakeTodoApi()
        self.push.latency = 0.15  # each createMessage takes a while: the kill lands mid-run
        self.server = FakeServer({"/push": self.push, "/todos-api": self.todo_api}).start()
        self.addCleanup(self.server.stop)
        User.objects.bulk_create(
            [User(id=i, username=f"worker-user-{i}") for i in range(1, USERS + 1)]
        )
        self.todo_api.todos = [
            {"userId": i, "id": i, "title": "x", "completed": False} for i in range(1, USERS + 1)
        ]
        self.env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_VISIBILITY_TIMEOUT": "3",  # a dead worker's tasks come back after 3 s
            "NOTIFICATIONS_LEASE_SECONDS": "2",
            "PUSH_API_URL": self.server.url + "/push/",
            "PUSH_APPLICATION": self.push.application,
            "PUSH_AUTH_KEY": self.push.auth,
            "TODOS_API_URL": self.server.url + "/todos-api/",
            "PUSH_BATCH_SIZE": "10",
            "NOTIFICATIONS_TASK_BATCH": "20",  # 15 tasks of 2 createMessage calls
            "PUSH_TIMEOUT_SECONDS": "1",  # with the lease below: a 4 s lease per task
            "SLOW_TESTS": "",
        }
        self.producer = Celery(
            broker=BROKER_URL,
            broker_transport_options={"visibility_timeout": 3},
            broker_connection_retry_on_startup=True,
        )
        self.addCleanup(self.producer.close)

    def start_worker(self, name):
        log = tempfile.NamedTemporaryFile(prefix=f"celery-{name}-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, log.name)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "backend", "worker", "-n", f"{name}@%h",
             "--pool=prefork", "--concurrency=2", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its children
        )  # fmt: skip
        self.addCleanup(self.stop, worker)
        worker.log_path = log.name
        return worker

    def stop(self, worker, sig=signal.SIGTERM):
        if worker.poll() is None:
            os.killpg(worker.pid, sig)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=5)

    def sent(self):
        return NotificationLog.objects.filter(status="sent").count()

    def wait_for(self, condition, timeout, worker, every=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if every:
                every()
            time.sleep(0.2)
        log = Path(worker.log_path).read_text()[-3000:]
        self.fail(f"timed out after {timeout} s; sent {self.sent()}/{USERS}; worker log:\n{log}")

    def test_daily_plan_through_a_worker_killed_mid_run_delivers_each_reminder_once(self):
        first = self.start_worker("first")
        self.producer.send_task("notifications.tasks.plan_reminders", queue=self.queue)
        self.wait_for(lambda: self.sent() >= 40, 60, first)
        self.stop(first, signal.SIGKILL)  # mid-run: tasks unacknowledged, leases held
        at_kill = self.sent()
        self.assertLess(at_kill, USERS, "the kill must land while batches are still queued")

        second = self.start_worker("second")

        def beat():  # what beat does every minute, here every second
            self.producer.send_task("notifications.tasks.retry_notifications", queue=self.queue)
            time.sleep(0.8)

        self.wait_for(lambda: self.sent() == USERS, 90, second, every=beat)
        deliveries = self.push.deliveries_per_user()
        self.assertEqual(len(deliveries), USERS)
        self.assertEqual(
            {user: n for user, n in deliveries.items() if n != 1}, {}, "delivered more than once"
        )
        self.assertEqual(NotificationLog.objects.exclude(status="sent").count(), 0)
        print(
            f"\ncelery worker test: {at_kill}/{USERS} sent when the worker was killed; "
            f"{len(self.push.duplicates)} repeats de-duplicated by transactionId",
            file=sys.stderr,
        )

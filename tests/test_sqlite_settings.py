"""SQLite configured for a server: WAL, synchronous=NORMAL, BEGIN IMMEDIATE, a busy timeout."""

import tempfile
import threading
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.db.backends.sqlite3.base import DatabaseWrapper
from django.test import TestCase


def file_database(path, options, alias="sqlite_settings_test"):
    """A connection to a SQLite file with `options`, usable with transaction.atomic(alias)."""
    wrapper = DatabaseWrapper(
        {
            **settings.DATABASES["default"],
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": options,
            "TEST": {},
        },
        alias=alias,
    )
    connections[alias] = wrapper  # this thread only: django.db.connections is thread-local
    return wrapper


def forget(*aliases):
    for alias in aliases:
        try:
            del connections[alias]
        except AttributeError:
            pass


class SqliteServerOptionsTests(TestCase):  # TestCase: lets these tests open connections
    def setUp(self):
        self.folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.addCleanup(forget, "sqlite_settings_test", "other")

    def connect(self, name="db.sqlite3"):
        database = file_database(self.folder / name, settings.SQLITE_SERVER_OPTIONS)
        self.addCleanup(database.close)
        return database

    def test_a_file_database_runs_in_wal_with_normal_sync(self):
        with self.connect().cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            self.assertEqual(cursor.fetchone()[0], "wal")
            cursor.execute("PRAGMA synchronous")
            self.assertEqual(cursor.fetchone()[0], 1)  # NORMAL
            cursor.execute("PRAGMA busy_timeout")
            self.assertEqual(cursor.fetchone()[0], 20_000)

    def test_transactions_take_the_write_lock_when_they_begin(self):
        path = self.folder / "db.sqlite3"
        first = self.connect()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE t (n INTEGER)")
        second = file_database(path, {**settings.SQLITE_SERVER_OPTIONS, "timeout": 0.05}, "other")
        self.addCleanup(second.close)
        with transaction.atomic(using=first.alias), first.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM t")  # only a read, yet it holds the write lock
            with (
                self.assertRaisesMessage(OperationalError, "locked"),
                transaction.atomic(using="other"),
            ):
                second.cursor().execute("SELECT 1")

    def test_writers_queue_on_the_busy_timeout_instead_of_failing(self):
        with self.connect().cursor() as cursor:
            cursor.execute("CREATE TABLE t (n INTEGER)")
        errors = []

        def writer(offset):
            # Read, then write, in one transaction: under BEGIN DEFERRED two of these fail
            # at once with "database is locked" (neither read lock can be upgraded).
            database = file_database(self.folder / "db.sqlite3", settings.SQLITE_SERVER_OPTIONS)
            try:
                for n in range(50):
                    with transaction.atomic(using=database.alias), database.cursor() as cursor:
                        cursor.execute("SELECT COUNT(*) FROM t")
                        cursor.execute("INSERT INTO t VALUES (%s)", [offset + n])
            except Exception as error:  # reported below
                errors.append(error)
            finally:
                database.close()

        threads = [threading.Thread(target=writer, args=(i * 100,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        with self.connect().cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM t")
            self.assertEqual(cursor.fetchone()[0], 200)

    def test_the_default_database_gets_them_only_when_it_is_a_sqlite_file(self):
        default = settings.DATABASES["default"]
        if default["ENGINE"] != "django.db.backends.sqlite3":
            self.assertNotIn("init_command", default.get("OPTIONS", {}))
            return
        self.assertEqual(
            {key: default["OPTIONS"][key] for key in settings.SQLITE_SERVER_OPTIONS},
            settings.SQLITE_SERVER_OPTIONS,
        )

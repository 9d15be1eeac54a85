"""Both runners run in parallel by default (README, "Running the tests"): what every worker
process must have (the network guard, the default fakes, a reset before each test), the
defaults and the knob, SQLite clones, and how scripts/run_tests.py reads the two summaries."""

import argparse
import importlib.util
import os
import pickle
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import SimpleTestCase, TestCase

from backend.test_runner import (
    AssertionSentAsText,
    FailureSentAsText,
    NetworkGuardedRunner,
    ResettingRemoteTestResult,
    sqlite_clones_include_the_wal,
)
from backend.testing import fakes, slow_test
from fakes import netguard
from notifications.push import PushService
from notifications.testing import push_provider, seed_todos, todo_api
from payments.testing import shared_engine
from tests.test_sqlite_settings import file_database, forget

ROOT = Path(settings.BASE_DIR)
User = get_user_model()


def load_run_tests():
    spec = importlib.util.spec_from_file_location("run_tests", ROOT / "scripts" / "run_tests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class WorkerStateTests(SimpleTestCase):
    """Whichever runs second sees nothing of the first, in whatever process the runner runs
    them (this one, or a parallel worker, forked or spawned): guard on, fakes fresh."""

    def start_clean_and_leave_state_behind(self):
        self.assertTrue(netguard.is_enabled())
        self.assertEqual(fakes().push.outbox, [])
        self.assertIsNone(cache.get("left-behind"))
        # The module-level fakes (fake_todos(), fakeservices' default mounts) too.
        self.assertEqual(todo_api.todos, seed_todos())
        self.assertEqual((push_provider.outbox, shared_engine.charges), ([], []))
        PushService().create_message([{"text": "hi", "conditions": ["UserID", "EQ", 1]}])
        cache.set("left-behind", self.id())
        todo_api.todos = {"not": "a list"}
        push_provider.outbox.append({"left": "behind"})
        shared_engine.charges.append({"left": "behind"})
        self.assertEqual(len(fakes().push.outbox), 1)

    def test_one(self):
        self.start_clean_and_leave_state_behind()

    def test_two(self):
        self.start_clean_and_leave_state_behind()


class WorkerDatabaseTests(TestCase):
    """The worker's own test database (a clone, or pytest-django's _gw<N>), rolled back."""

    def add_the_only_user(self):
        self.assertFalse(User.objects.exists())
        User.objects.create_user("only-one")
        self.assertEqual(User.objects.count(), 1)

    def test_one(self):
        self.add_the_only_user()

    def test_two(self):
        self.add_the_only_user()


class WorkerResultTests(SimpleTestCase):
    def test_a_parallel_workers_result_resets_before_each_test(self):
        # Django's RemoteTestResult records in the worker and the parent only replays events,
        # so the reset must happen in the worker's result.
        before = fakes()
        cache.set("left-behind", 1)
        result = ResettingRemoteTestResult()
        result.startTest(self)
        self.assertIsNot(fakes(), before)
        self.assertIsNone(cache.get("left-behind"))
        self.assertEqual(result.events, [("startTest", 0)])

    def test_every_failure_reaches_the_parent_whatever_it_holds(self):
        class Failing(unittest.TestCase):  # defined here: no runner collects it
            def test_subtest_then_a_lock(self):
                with self.subTest(n=2):
                    self.assertEqual(2, 1)
                self.lock = threading.Lock()  # after the failure: Django would crash on it

            def test_error_holding_a_lock(self):
                raise RuntimeError("holds a lock", threading.Lock())

            def test_assertion_holding_a_lock(self):
                raise AssertionError(threading.Lock())

            def test_plain_failure(self):
                self.assertEqual(1, 2)

        result = ResettingRemoteTestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(Failing).run(result)
        sent = pickle.loads(pickle.dumps(result.events))  # what the worker sends the parent
        subtest_event = next(event for event in sent if event[0] == "addSubTest")
        self.assertEqual(str(subtest_event[2]), str(Failing("test_subtest_then_a_lock")) + " (n=2)")
        self.assertIs(subtest_event[3][0], AssertionError)
        errors = [event[2] for event in sent if event[0] in ("addError", "addFailure")]
        kinds = sorted(error[0].__name__ for error in errors)
        self.assertEqual(kinds, ["AssertionError", "AssertionSentAsText", "FailureSentAsText"])
        as_text = next(error for error in errors if error[0] is FailureSentAsText)
        self.assertIn("RuntimeError: ('holds a lock'", str(as_text[1]))
        self.assertTrue(issubclass(AssertionSentAsText, AssertionError))  # still a failure


class DefaultsTests(SimpleTestCase):
    def parse(self, *argv):
        parser = argparse.ArgumentParser()
        NetworkGuardedRunner.add_arguments(parser)
        return parser.parse_args(argv).parallel

    def test_manage_py_test_is_parallel_unless_told_otherwise(self):
        self.assertEqual(self.parse(), "auto")  # manage.py test: DJANGO_TEST_PROCESSES or cores
        self.assertEqual(self.parse("--parallel", "1"), 1)
        self.assertEqual(self.parse("--parallel", "3"), 3)
        self.assertEqual(NetworkGuardedRunner(parallel=2, pdb=True).parallel, 1)  # debugs here

    def test_pytest_counts_workers_by_the_same_variable(self):
        import conftest

        def workers(*args, **environ):
            with mock.patch.dict(os.environ, environ):
                if not environ:
                    os.environ.pop("DJANGO_TEST_PROCESSES", None)
                return conftest.pytest_xdist_auto_num_workers(SimpleNamespace(args=list(args)))

        whole = ["tests", "payments"]
        self.assertEqual(workers(*whole, DJANGO_TEST_PROCESSES="3"), 3)
        self.assertEqual(workers(*whole, DJANGO_TEST_PROCESSES="1"), 0)  # serial, in process
        self.assertIsNone(workers(*whole))  # xdist's own count: one per core
        self.assertEqual(workers("tests/test_parallel_runner.py"), 0)  # one file: in process
        self.assertEqual(workers("tests/test_parallel_runner.py::DefaultsTests"), 0)
        self.assertEqual(workers("tests/test_parallel_runner.py", DJANGO_TEST_PROCESSES="2"), 2)


class SqliteCloneTests(TestCase):  # TestCase: pytest-django lets it open connections
    def test_a_clone_of_a_wal_database_has_what_is_still_in_the_log(self):
        folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.addCleanup(forget, "clone_source")
        source = file_database(
            folder / "test.sqlite3", settings.SQLITE_SERVER_OPTIONS, "clone_source"
        )
        self.addCleanup(source.close)
        with source.cursor() as cursor:
            cursor.execute("CREATE TABLE latest (n INTEGER)")
            cursor.execute("INSERT INTO latest VALUES (42)")
            cursor.execute("PRAGMA journal_mode")
            self.assertEqual(cursor.fetchone()[0], "wal")
        self.assertGreater((folder / "test.sqlite3-wal").stat().st_size, 0)

        with sqlite_clones_include_the_wal([source]):
            source.creation.clone_test_db(suffix="1", verbosity=0)

        with sqlite3.connect(folder / "test_1.sqlite3") as clone:
            self.assertEqual(clone.execute("SELECT n FROM latest").fetchall(), [(42,)])
        clone.close()
        self.assertNotIn("clone_test_db", vars(source.creation))  # put back afterwards


class SummaryParsingTests(SimpleTestCase):
    def setUp(self):
        self.run_tests = load_run_tests()

    def test_pytest_serial_and_xdist_summaries(self):
        counts = self.run_tests.pytest_counts
        serial = "....s..\n413 passed, 18 skipped, 462 subtests passed in 23.64s\n"
        xdist = (
            "created: 2/2 workers\n2 workers [431 items]\n\n...uu.s\n"
            "SKIPPED [1] tests/test_x.py:3: slow journey; set SLOW_TESTS=1\n"
            "413 passed, 18 skipped, 462 subtests passed in 11.02s\n"
        )
        expected = {"passed": 413, "skipped": 18, "subtests passed": 462}
        self.assertEqual(counts(serial), expected)
        self.assertEqual(counts(xdist), expected)
        self.assertEqual(counts("== 1 failed, 2 passed, 1 error in 0.12s ==\n"), {
            "failed": 1, "passed": 2, "error": 1
        })  # fmt: skip
        self.assertEqual(counts("no tests ran in 0.01s\n"), {})

    def test_only_the_closing_line_counts(self):
        output = "a test printed: 999 passed, 3 failed in 1.00s\n...\n7 passed in 2.50s\n"
        self.assertEqual(self.run_tests.pytest_counts(output), {"passed": 7})
        self.assertEqual(self.run_tests.django_count("..\nRan 431 tests in 9.1s\n"), 431)
        self.assertIsNone(self.run_tests.django_count("ImportError: no module\n"))


@slow_test
class StartMethodTests(SimpleTestCase):
    """`manage.py test --parallel 2` in a child process, with each start method Linux has:
    under fork a worker inherits the guard and the fakes, under spawn it must install them."""

    def run_in_parallel(self, start_method):
        program = (
            "import multiprocessing, sys\n"
            "if __name__ == '__main__':\n"
            f"    multiprocessing.set_start_method({start_method!r})\n"
            "    from django.core.management import execute_from_command_line\n"
            "    execute_from_command_line(['manage.py', 'test', '--noinput', '--parallel', '2',\n"
            "        'tests.test_parallel_runner.WorkerStateTests',\n"
            "        'tests.test_parallel_runner.WorkerDatabaseTests'])\n"
        )
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "DATABASE_URL": "sqlite://:memory:",  # not this run's test database
            "SLOW_TESTS": "",
        }
        done = subprocess.run(
            [sys.executable, "-c", program],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output[-3000:])
        self.assertIn("Ran 4 tests", output)
        self.assertEqual(output.count("Cloning test database"), 2, output[-3000:])  # 2 workers

    def test_fork(self):
        self.run_in_parallel("fork")

    def test_spawn(self):
        self.run_in_parallel("spawn")

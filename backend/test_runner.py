import contextlib
import pickle
import traceback
import unittest

from django.db import connections
from django.test.runner import (
    DiscoverRunner,
    ParallelTestSuite,
    RemoteTestResult,
    RemoteTestRunner,
    _init_worker,
)

from backend import testing
from fakes import netguard


def prepare_test_process():
    """What every process that runs tests needs: the network guard on and the default fakes
    installed. Idempotent: a forked worker inherits both from the parent already."""
    netguard.enable()
    testing.install_default_fakes()


class ResettingTextTestResult(unittest.TextTestResult):
    def startTest(self, test):
        testing.reset_state()
        super().startTest(test)


class FailureSentAsText(Exception):
    """A parallel worker's error whose exception does not pickle, sent to the parent as the
    text of its traceback (Django's runner would stop the whole run instead)."""


class AssertionSentAsText(FailureSentAsText, AssertionError):
    """The same for a failed assertion, so that the parent still counts it as a failure."""


class SubTestSentAsText:
    """What the parent needs of a failed subtest: its name, description and failure type.
    Django sends the subtest itself, which pickles the whole test case with it: once that holds
    a server, a session or a lock (after the subtest failed, say), the run stops with a
    MaybeEncodingError in place of the failure."""

    def __init__(self, subtest):
        self.name, self.test_id = str(subtest), subtest.id()
        self.description = subtest.shortDescription()
        self.failureException = subtest.failureException

    def __str__(self):
        return self.name

    def id(self):
        return self.test_id

    def shortDescription(self):
        return self.description


def picklable_error(test, err):
    try:
        pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes, just made)
        return err
    except Exception:
        text = "".join(traceback.format_exception(*err))
        kind = (
            AssertionSentAsText if issubclass(err[0], test.failureException) else FailureSentAsText
        )
        return kind, kind(f"from a parallel worker (the exception does not pickle):\n{text}"), None


class ResettingRemoteTestResult(RemoteTestResult):
    """What a parallel worker records its tests into (Django replays the events in the
    parent): the same per-test reset as ResettingTextTestResult, in the worker, where the
    test runs; and failures that always reach the parent, whatever they hold."""

    def startTest(self, test):
        testing.reset_state()
        super().startTest(test)

    def addError(self, test, err):
        super().addError(test, picklable_error(test, err))

    def addFailure(self, test, err):
        super().addFailure(test, picklable_error(test, err))

    def addSubTest(self, test, subtest, err):
        if err is not None:
            subtest, err = SubTestSentAsText(subtest), picklable_error(test, err)
        super().addSubTest(test, subtest, err)


class ResettingRemoteTestRunner(RemoteTestRunner):
    resultclass = ResettingRemoteTestResult


def _init_guarded_worker(*args):
    """Pool initializer of a parallel worker. Django's own switches to this worker's clone of
    the test database (and, under the spawn start method, sets Django up and calls
    django.test.utils.setup_test_environment, but not this runner's); then this process gets
    the guard and the fakes. Module level, so that spawn can pickle it by name."""
    _init_worker(*args)
    prepare_test_process()


class GuardedParallelTestSuite(ParallelTestSuite):
    init_worker = _init_guarded_worker
    runner_class = ResettingRemoteTestRunner


@contextlib.contextmanager
def sqlite_clones_include_the_wal(databases=None):
    """Django clones a file SQLite test database for its parallel workers by copying the file,
    and a WAL database (settings.SQLITE_SERVER_OPTIONS; the SLOW_TESTS test database is one)
    still has its latest pages in the -wal file beside it: the clones would lack the last
    migrations' tables. Fold the log into the file before each clone."""
    patched = []
    for connection in connections.all() if databases is None else databases:
        if connection.vendor != "sqlite":
            continue
        clone = connection.creation.clone_test_db

        def checkpoint_then_clone(*args, connection=connection, clone=clone, **kwargs):
            if not connection.is_in_memory_db():
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return clone(*args, **kwargs)

        connection.creation.clone_test_db = checkpoint_then_clone
        patched.append(connection.creation)
    try:
        yield
    finally:
        for creation in patched:
            del creation.clone_test_db


class NetworkGuardedRunner(DiscoverRunner):
    """`manage.py test` with the network guard on, the default fakes installed (fresh
    for every test, see backend.testing) and a clean cache per test, in parallel by
    default: `--parallel auto`, one worker process per core (DJANGO_TEST_PROCESSES=N
    picks N, and `--parallel 1` or DJANGO_TEST_PROCESSES=1 runs serially)."""

    parallel_test_suite = GuardedParallelTestSuite

    def __init__(self, *args, pdb=False, parallel=0, **kwargs):
        # --pdb debugs in this process: serial, as pytest-xdist makes `-n auto --pdb`.
        super().__init__(*args, pdb=pdb, parallel=1 if pdb else parallel, **kwargs)

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        # `manage.py test` turns "auto" into DJANGO_TEST_PROCESSES, else the core count.
        parser.set_defaults(parallel="auto")

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        prepare_test_process()

    def setup_databases(self, **kwargs):
        with sqlite_clones_include_the_wal():
            return super().setup_databases(**kwargs)

    def teardown_test_environment(self, **kwargs):
        testing.uninstall_default_fakes()
        netguard.disable()
        super().teardown_test_environment(**kwargs)

    def get_resultclass(self):
        return super().get_resultclass() or ResettingTextTestResult

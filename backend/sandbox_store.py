"""Where sandbox mode keeps the fakes' state: in process, or a SQLite file shared by workers.

Every fake has one entry point, `handle()`, and the fake Stripe can dump and load its
whole state (`dump_state()` / `load_state()`; other fakes fall back to their
attributes). `SqliteStore.run(name, fake, fn)` makes one call atomic across every
process using the file:

    BEGIN IMMEDIATE            -- one writer at a time, across processes
    reload the fake, only if the stored version changed since this process saw it
    fn()                       -- e.g. fake.handle(...)
    save the state, version + 1
    COMMIT

so several gunicorn workers behave as one Stripe (ids, idempotency keys, refunds), and
a restarted server finds yesterday's charges. `MemoryStore` does nothing: the fake's
own lock is enough in one process (the default for tests: fastest).
"""

import contextlib
import logging
import os
import pickle
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from backend.fakes import TransportFault

logger = logging.getLogger(__name__)

# Per process: locks, faults scripted by a test, and a test's clock.
NOT_STATE = ("_lock", "faults", "clock")


def execute_when_unlocked(connection, statement, seconds=30):
    """Run a set-up statement, retrying while another process holds the file.

    Switching to WAL needs a lock the busy timeout does not wait for: workers opening a
    new state file at the same moment get "database is locked" at once.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return connection.execute(statement)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def dump(fake):
    if hasattr(fake, "dump_state"):
        return fake.dump_state()
    return {k: v for k, v in vars(fake).items() if k not in NOT_STATE}


def load(fake, state):
    if hasattr(fake, "load_state"):
        fake.load_state(state)
    else:
        for name, value in state.items():
            if name not in NOT_STATE:
                setattr(fake, name, value)


class MemoryStore:
    """State stays in this process's fakes (tests, `fakeservices`)."""

    location = "memory"

    def __init__(self):
        self._secrets = {}

    def run(self, name, fake, fn, write=True):
        return fn()

    def secret(self, name, make):
        return self._secrets.setdefault(name, make())

    def versions(self):
        return {}


class SqliteStore:
    """Fakes' state in one SQLite file, shared by processes and surviving restarts."""

    def __init__(self, path):
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()  # one transaction at a time in this process
        self._local = threading.local()  # re-entrant run() on one thread
        self._versions = {}  # name -> the version this process's fake holds
        self._connection = None
        self._pid = None

    # ------------------------------------------------------------ connection
    def _connect(self):
        if self._connection is None or self._pid != os.getpid():  # new, or after a fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            for statement in (
                "PRAGMA journal_mode=WAL",
                # WAL + NORMAL: never corrupt; a power cut may lose the last call (a sandbox).
                "PRAGMA synchronous=NORMAL",
                "CREATE TABLE IF NOT EXISTS fake_state (name TEXT PRIMARY KEY, "
                "version INTEGER NOT NULL, state BLOB NOT NULL)",
                "CREATE TABLE IF NOT EXISTS sandbox_secret (name TEXT PRIMARY KEY, "
                "value TEXT NOT NULL)",
            ):
                execute_when_unlocked(connection, statement)
            self._connection, self._pid = connection, os.getpid()
            self._versions = {}
        return self._connection

    @contextlib.contextmanager
    def _transaction(self):
        with self._lock:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            else:
                connection.execute("COMMIT")

    # ------------------------------------------------------------------ API
    def run(self, name, fake, fn, write=True):
        """fn() on `fake` holding the latest shared state; the state after it is saved.

        write=False: fn only reads (its changes, if any, stay in this process).
        """
        if getattr(self._local, "depth", 0):  # already inside run() on this thread
            return fn()
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT version FROM fake_state WHERE name = ?", (name,)
            ).fetchone()
            version = row[0] if row else 0
            if self._versions.get(name) != version:
                if row:
                    [state] = connection.execute(
                        "SELECT state FROM fake_state WHERE name = ?", (name,)
                    ).fetchone()
                    load(fake, pickle.loads(state))  # noqa: S301 (our own file, our own objects)
                else:
                    fake.reset()  # no state yet (a new or reset file): start empty
                self._versions[name] = version
            self._local.depth = 1
            fault = None
            try:
                result = fn()
            except TransportFault as error:  # performed or not, the state is what it is
                fault = error
            except BaseException:
                self._versions.pop(name, None)  # half-done in memory: reload next time
                raise
            finally:
                self._local.depth = 0
            if not write:  # (a read's request-log entry stays in this process only)
                return result
            state = pickle.dumps(dump(fake), protocol=pickle.HIGHEST_PROTOCOL)
            connection.execute(
                "INSERT INTO fake_state (name, version, state) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
                "state = excluded.state",
                (name, version + 1, state),
            )
            self._versions[name] = version + 1
        if fault is not None:
            raise fault
        return result

    def secret(self, name, make):
        """A value generated once and shared by every process (e.g. the webhook secret)."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT value FROM sandbox_secret WHERE name = ?", (name,)
            ).fetchone()
            if row:
                return row[0]
            value = make()
            connection.execute(
                "INSERT INTO sandbox_secret (name, value) VALUES (?, ?)", (name, value)
            )
            return value

    def versions(self):
        with self._transaction() as connection:
            return dict(connection.execute("SELECT name, version FROM fake_state").fetchall())

    def close(self):
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None


def from_settings():
    from django.conf import settings

    location = settings.SANDBOX_STATE
    if not location or location == "memory":
        return MemoryStore()
    return SqliteStore(location)


class SharedFake:
    """A fake whose every handle() runs inside a store transaction (any fake, any store)."""

    def __init__(self, fake, store, name):
        self.fake, self.store, self.name = fake, store, name

    def run(self, fn, write=True):
        return self.store.run(self.name, self.fake, fn, write)

    def handle(self, method, path, query, body, headers):
        return self.run(
            lambda: self.fake.handle(method, path, query, body, headers),
            write=method.upper() != "GET",
        )

    def reset(self):
        return self.run(self.fake.reset)


def new_webhook_secret():
    return "whsec_sandbox_" + secrets.token_hex(24)

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

Saves cost O(change), not O(state), for a fake that names its state (`STATE`, as the
fake Stripe does): each of its dict attributes (objects by id, idempotent answers, event
snapshots, indexes...) is kept one row per key in `fake_item`, and a `TrackedDict` notes
the keys a call read or wrote through it, so a save rewrites only those rows (a key read
may have been changed in place: a stored object is a mutable dict). The other attributes
(counters, short lists, sets) are pickled together in `fake_state.state`. Each row carries
the version that wrote it, so a process that held version v reloads only the rows written
after v; a deleted key leaves a row with no value until the next full rewrite (after a
reset, or a first save), which moves `base` so every other process reloads in full.
One caveat: a sub-object shared by two stored objects (a token's card and the card, a
refund and its charge's `refunds.data`) is one dict in one process and two copies once
reloaded from rows, as Stripe's answers are copies anyway. Other fakes keep one pickle.
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

from fakes.contract import TransportFault

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


class TrackedDict(dict):
    """A dict that notes every key read or written through it (`touched`), so a save can
    write only those. Membership tests (`in`) are not reads; iteration over values or items
    touches every key. Pickles and deep-copies as a plain dict."""

    __slots__ = ("touched",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.touched = set()

    def __getitem__(self, key):
        self.touched.add(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self.touched.add(key)
        return dict.get(self, key, default)

    def __setitem__(self, key, value):
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key, *default):
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key, default=None):
        self.touched.add(key)
        return dict.setdefault(self, key, default)

    def popitem(self):
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value

    def update(self, *args, **kwargs):
        other = dict(*args, **kwargs)
        self.touched.update(other)
        dict.update(self, other)

    def clear(self):
        self.touched.update(dict.keys(self))
        dict.clear(self)

    def values(self):
        self.touched.update(dict.keys(self))
        return dict.values(self)

    def items(self):
        self.touched.update(dict.keys(self))
        return dict.items(self)

    def copy(self):
        self.touched.update(dict.keys(self))
        return dict(self)

    def __reduce__(self):
        return (dict, (dict(self),))


ITEMS_FORMAT = 2  # fake_state.state of a fake kept in rows: {"format", "base", "rest"}


CHUNK = 256  # a longer list value (an index of ids) is kept in parts of this many items


class Chunked:
    """The row of a long list: its length (the parts are rows of `attr + "[]"`, (key, n))."""

    __slots__ = ("length",)

    def __init__(self, length):
        self.length = length

    def __reduce__(self):
        return (Chunked, (self.length,))


def _dumps(value):
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def itemised(fake):
    """The dict attributes of a fake's STATE (kept in rows) and the rest; None if it has none."""
    names = getattr(fake, "STATE", None)
    if not names or not all(hasattr(fake, name) for name in names):
        return None
    tracked = tuple(name for name in names if isinstance(getattr(fake, name), dict))
    return tracked, tuple(name for name in names if name not in tracked)


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
        self._tracked = {}  # name -> {attr: the TrackedDict installed on the fake}
        self._base = {}  # name -> the version of the last full rewrite
        self._saved_lists = {}  # (name, attr, key) -> a long list as last saved or loaded
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
                "CREATE TABLE IF NOT EXISTS fake_item (name TEXT NOT NULL, attr TEXT NOT NULL, "
                "key BLOB NOT NULL, version INTEGER NOT NULL, value BLOB, "
                "PRIMARY KEY (name, attr, key))",
                "CREATE INDEX IF NOT EXISTS fake_item_version ON fake_item (name, version)",
                "CREATE TABLE IF NOT EXISTS sandbox_secret (name TEXT PRIMARY KEY, "
                "value TEXT NOT NULL)",
            ):
                execute_when_unlocked(connection, statement)
            self._connection, self._pid = connection, os.getpid()
            self._versions, self._tracked, self._base = {}, {}, {}
            self._saved_lists = {}
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
                    self._reload(connection, name, fake)
                else:
                    fake.reset()  # no state yet (a new or reset file): start empty
                    self._tracked.pop(name, None)
                self._versions[name] = version
            self._local.depth = 1
            fault = None
            try:
                result = fn()
            except TransportFault as error:  # performed or not, the state is what it is
                fault = error
            except BaseException:
                self._versions.pop(name, None)  # half-done in memory: reload next time
                self._tracked.pop(name, None)
                raise
            finally:
                self._local.depth = 0
            if not write:  # (a read's request-log entry stays in this process only)
                return result
            try:
                self._save(connection, name, fake, version + 1)
            except BaseException:  # rolled back, and what was noted as changed is forgotten
                self._versions.pop(name, None)
                self._tracked.pop(name, None)
                raise
            self._versions[name] = version + 1
        if fault is not None:
            raise fault
        return result

    def _reload(self, connection, name, fake):
        """Bring `fake` to the stored state: only the rows written since its version, when
        this process holds an earlier version of the same base; in full otherwise."""
        [blob] = connection.execute(
            "SELECT state FROM fake_state WHERE name = ?", (name,)
        ).fetchone()
        state = pickle.loads(blob)  # noqa: S301 (our own file, our own objects)
        split = itemised(fake)
        if split is None or not (isinstance(state, dict) and state.get("format") == ITEMS_FORMAT):
            load(fake, state)  # one pickle (any other fake, or a file an older version wrote)
            self._tracked.pop(name, None)
            return
        tracked = self._tracked.get(name)
        known = self._versions.get(name)
        for attr, value in state["rest"].items():
            setattr(fake, attr, value)
        self._base[name] = state["base"]
        if tracked is not None and known is not None and known >= state["base"]:
            # what the other processes wrote since this one's version
            rows = connection.execute(
                "SELECT attr, key, value FROM fake_item WHERE name = ? AND version > ?",
                (name, known),
            )
            self._apply(name, tracked, rows)
            return
        tracked = {attr: TrackedDict() for attr in split[0]}
        for saved in [k for k in self._saved_lists if k[0] == name]:
            del self._saved_lists[saved]
        rows = connection.execute(
            "SELECT attr, key, value FROM fake_item WHERE name = ? AND value IS NOT NULL",
            (name,),
        )
        self._apply(name, tracked, rows)
        for attr, values in tracked.items():
            setattr(fake, attr, values)
        self._tracked[name] = tracked

    def _apply(self, name, tracked, rows):
        """Rows read from fake_item into the tracked dicts (not marking anything touched)."""
        heads, chunks = {}, {}
        for attr, key, value in rows:
            if attr.endswith("[]"):  # a part of a long list
                if value is not None:
                    key, number = pickle.loads(key)  # noqa: S301
                    chunks.setdefault((attr[:-2], key), {})[number] = pickle.loads(value)  # noqa: S301
                continue
            target = tracked.get(attr)
            if target is None:
                continue
            key = pickle.loads(key)  # noqa: S301
            value = None if value is None else pickle.loads(value)  # noqa: S301
            if isinstance(value, Chunked):
                heads[attr, key] = value.length
                continue
            self._saved_lists.pop((name, attr, key), None)
            if value is None:
                dict.pop(target, key, None)
            else:
                dict.__setitem__(target, key, value)
        for (attr, key), length in heads.items():
            current = dict.get(tracked[attr], key)
            items = list(current) if isinstance(current, list) else []
            for number, part in sorted(chunks.get((attr, key), {}).items()):
                items[number * CHUNK : number * CHUNK + len(part)] = part
            del items[length:]
            dict.__setitem__(tracked[attr], key, items)
            self._saved_lists[name, attr, key] = list(items)

    def _rows(self, name, attr, key, value, version):
        """The fake_item rows that store `value`: one, or for a long list (an index of ids)
        a head with its length and the parts from the first that changed since the save."""
        if not (isinstance(value, list) and len(value) > CHUNK):
            self._saved_lists.pop((name, attr, key), None)
            return [(name, attr, _dumps(key), version, _dumps(value))]
        saved = self._saved_lists.get((name, attr, key))
        first = 0
        if saved is not None and len(value) >= len(saved) and value[: len(saved)] == saved:
            first = len(saved) // CHUNK  # it only grew: rewrite its last part and the new ones
        rows = [(name, attr, _dumps(key), version, _dumps(Chunked(len(value))))]
        for number in range(first, (len(value) + CHUNK - 1) // CHUNK):
            part = value[number * CHUNK : (number + 1) * CHUNK]
            rows.append((name, attr + "[]", _dumps((key, number)), version, _dumps(part)))
        self._saved_lists[name, attr, key] = list(value)
        return rows

    def _save(self, connection, name, fake, version):
        """Write what the call changed as `version` (one pickle for a fake without STATE)."""
        split = itemised(fake)
        if split is None:
            state = _dumps(dump(fake))
        else:
            attrs, rest = split
            tracked = self._tracked.get(name)
            upsert = (
                "INSERT INTO fake_item (name, attr, key, version, value) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name, attr, key) DO UPDATE SET version = excluded.version, "
                "value = excluded.value"
            )
            if tracked is None or any(getattr(fake, a) is not tracked.get(a) for a in attrs):
                base = version  # everything, from scratch: others reload in full
                connection.execute("DELETE FROM fake_item WHERE name = ?", (name,))
                for saved in [k for k in self._saved_lists if k[0] == name]:
                    del self._saved_lists[saved]
                tracked = {attr: TrackedDict(getattr(fake, attr)) for attr in attrs}
                connection.executemany(
                    upsert,
                    (
                        row
                        for attr, values in tracked.items()
                        for key, value in dict.items(values)
                        for row in self._rows(name, attr, key, value, version)
                    ),
                )
                for attr, values in tracked.items():
                    setattr(fake, attr, values)
                self._tracked[name] = tracked
            else:
                base = self._base.get(name, version)
                changed, gone = [], []
                for attr, values in tracked.items():
                    for key in values.touched:
                        if key in values:
                            value = dict.__getitem__(values, key)
                            changed.extend(self._rows(name, attr, key, value, version))
                        else:
                            gone.append((version, name, attr, _dumps(key)))
                            self._saved_lists.pop((name, attr, key), None)
                    values.touched.clear()
                connection.executemany(upsert, changed)
                connection.executemany(
                    "UPDATE fake_item SET version = ?, value = NULL "
                    "WHERE name = ? AND attr = ? AND key = ?",
                    gone,
                )
            self._base[name] = base
            state = _dumps(
                {
                    "format": ITEMS_FORMAT,
                    "base": base,
                    "rest": {attr: getattr(fake, attr) for attr in rest},
                }
            )
        connection.execute(
            "INSERT INTO fake_state (name, version, state) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
            "state = excluded.state",
            (name, version, state),
        )

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

"""Journal or SQLite in WAL for the sandbox service's state? Both, measured on the same work.

    python benchmarks/service_durability.py [--requests 5000] [--stored 100000]

The service has one writer, so either shape needs no locking between processes. This
takes the records real requests produce (a raw-card payment: POST /v1/tokens + POST
/v1/charges with idempotency keys, through SandboxService's change tracking) and writes
them, one per request, as each shape would before answering:

- journal: one `write()` of the record (fakes/service/journal.py), optionally fsync;
- SQLite in WAL: one transaction per request, one row per changed key (INSERT OR
  REPLACE / DELETE, pickled value), synchronous=NORMAL (safe from kill -9) or FULL.

Then the load: 100k stored charges (and their events) read back into dicts, from the
journal's snapshot format (each object its own pickle, opened when read) and from a
SQLite table of pickled rows (SELECT every row). µs per request and seconds to load;
prints one JSON line. Loopback-free, in a temporary directory.
"""

import argparse
import json
import os
import pickle
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes.service import SandboxService
from fakes.service.journal import Journal, encode, loads
from fakes.service.service import DUMPS

TOKEN = b"card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2035&card[cvc]=123"
HEADERS = {"Authorization": "Bearer sk_test_bench"}


def records(count):
    """The journal records `count` payments' requests produce, in order."""
    service = SandboxService(None)
    found = []
    real_commit = service._commit

    def capture(names, extra=None):
        changes = {name: c for name in names if (c := service.recorders[name].changes())}
        if changes or extra:
            found.append(("c", changes, extra))

    service._commit = capture
    for n in range(count):
        answer = service.handle(
            "stripe", "POST", "/v1/tokens", "", TOKEN, {**HEADERS, "Idempotency-Key": f"t{n}"}
        )
        token = json.loads(answer.body)["id"]
        body = f"amount=500&currency=usd&source={token}".encode()
        service.handle(
            "stripe", "POST", "/v1/charges", "", body, {**HEADERS, "Idempotency-Key": f"c{n}"}
        )
    service._commit = real_commit
    service.close()
    return found


def rows_of(record):
    """(attr, key, value or None) rows of one record's dict changes, and other values."""
    _, changes, _ = record
    for name, change in changes.items():
        for attr, (present, deleted) in change.get("d", {}).items():
            for key, value in present.items():
                yield f"{name}.{attr}", key, value
            for key in deleted or ():
                yield f"{name}.{attr}", key, None
        for attr, value in change.get("v", {}).items():
            yield f"{name}.{attr}", "", value


def time_journal(found, folder, fsync):
    journal = Journal(folder, DUMPS, loads, fsync=fsync)
    journal.load()
    started = time.perf_counter()
    for record in found:
        journal.append(record)
    elapsed = time.perf_counter() - started
    journal.close()
    return elapsed / len(found) * 1e6


def time_sqlite(found, path, synchronous):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE state (attr TEXT, key BLOB, value BLOB, PRIMARY KEY (attr, key))")
    started = time.perf_counter()
    for record in found:
        db.execute("BEGIN IMMEDIATE")
        for attr, key, value in rows_of(record):
            packed_key = pickle.dumps(key)
            if value is None:
                db.execute("DELETE FROM state WHERE attr = ? AND key = ?", (attr, packed_key))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO state VALUES (?, ?, ?)",
                    (attr, packed_key, DUMPS(value)),
                )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed / len(found) * 1e6


def load_figures(stored, folder):
    """Seconds to load `stored` charges: the service's snapshot, and a SQLite table."""
    state = folder / "load-journal"
    service = SandboxService(str(state))
    headers = {"Authorization": "Bearer sk_test_bench"}
    for _ in range(stored):
        service.stripe.handle(
            "POST", "/v1/charges", "", b"amount=500&currency=usd&source=tok_visa", headers
        )
    service.recorders["stripe"].track()
    service._start_compaction()  # every object into a snapshot
    service.wait_compaction()
    objects = {
        k: dict.__getitem__(service.stripe.objects, k) for k in dict.keys(service.stripe.objects)
    }
    service.close()
    db = sqlite3.connect(folder / "load.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE state (attr TEXT, key BLOB, value BLOB, PRIMARY KEY (attr, key))")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO state VALUES ('stripe.objects', ?, ?)",
        ((pickle.dumps(k), DUMPS(v)) for k, v in objects.items()),
    )
    db.execute("COMMIT")
    db.close()
    del objects
    started = time.perf_counter()
    reloaded = SandboxService(str(state))
    journal_seconds = time.perf_counter() - started
    count = len(reloaded.stripe.charges)  # (opens every charge: what a full read costs)
    opened_seconds = time.perf_counter() - started
    reloaded.close()
    started = time.perf_counter()
    db = sqlite3.connect(folder / "load.sqlite3")
    table = {
        pickle.loads(k): pickle.loads(v) for k, v in db.execute("SELECT key, value FROM state")
    }
    sqlite_seconds = time.perf_counter() - started
    db.close()
    return {
        "load_charges": count,
        "load_objects": len(table),
        "journal_snapshot_load_seconds": round(journal_seconds, 2),
        "journal_snapshot_load_and_open_every_charge_seconds": round(opened_seconds, 2),
        "sqlite_select_and_unpickle_seconds": round(sqlite_seconds, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2500, help="payments (2 requests each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stored", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pb-durability-"))
    found = records(args.requests)
    sizes = [len(encode(record, DUMPS)) for record in found]
    figures = {name: [] for name in ("journal", "journal_fsync", "sqlite_normal", "sqlite_full")}
    for round_number in range(args.rounds):
        base = folder / f"round-{round_number}"
        base.mkdir()
        figures["journal"].append(time_journal(found, base / "journal", False))
        figures["journal_fsync"].append(time_journal(found[:500], base / "journal-fsync", True))
        figures["sqlite_normal"].append(time_sqlite(found, base / "normal.sqlite3", "NORMAL"))
        figures["sqlite_full"].append(time_sqlite(found[:500], base / "full.sqlite3", "FULL"))
    result = {
        f"{name}_us_per_request": round(statistics.median(v), 1) for name, v in figures.items()
    }
    result["record_bytes_median"] = statistics.median(sizes)
    result.update(load_figures(args.stored, folder))
    print(json.dumps(result))
    os.system(f"rm -rf {folder}")


if __name__ == "__main__":
    main()

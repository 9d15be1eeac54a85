"""The engine's per-request cost, bare and through the durable sandbox store.

    python benchmarks/engine_paths.py [--requests N] [--rounds R] [--stored 0,1000]

`engine`: a Token + Charge pair straight into FakeStripe.handle() (what the fake server and
fake_stripe() add beneath the stripe library), µs per pair. `sandbox store`: the same pair
through SandboxStripe on a SqliteStore file (BEGIN IMMEDIATE, reload if another process
wrote, save, COMMIT), at each number of stored charges, ms per pair; `two processes`
alternates two stores on one file, so every call first reloads the other's change (what
gunicorn's workers do). CPU-bound, loopback-free; prints one JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

HEADERS = {"Authorization": "Bearer sk_test_bench", "Idempotency-Key": ""}
TOKEN = b"card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2035&card[cvc]=123"


def pair(engine, n):
    """Token + charge as the backend makes them (each with an idempotency key)."""
    headers = {**HEADERS, "Idempotency-Key": f"tok-{n}-{time.time_ns()}"}
    answer = engine.handle("POST", "/v1/tokens", "", TOKEN, headers)
    token = json.loads(answer.body)["id"]
    headers["Idempotency-Key"] = f"ch-{n}-{time.time_ns()}"
    body = f"amount=500&currency=usd&source={token}&description=bench+{n}".encode()
    answer = engine.handle("POST", "/v1/charges", "", body, headers)
    assert answer.status == 200, answer.body


def timed(fn, count):
    fn(-1)
    started = time.perf_counter()
    for n in range(count):
        fn(n)
    return (time.perf_counter() - started) / count


def store_run(stored, args):
    from backend.sandbox_store import SqliteStore
    from fakes.stripe import FakeStripe
    from payments.testing.sandbox import SandboxStripe

    folder = tempfile.mkdtemp(prefix="pb-store-")
    one = SandboxStripe(FakeStripe(), SqliteStore(f"{folder}/state.sqlite3"))
    two = SandboxStripe(FakeStripe(), SqliteStore(f"{folder}/state.sqlite3"))
    fill = FakeStripe()
    for n in range(stored):
        pair(fill, n)
    one.run(lambda: one.fake.load_state(fill.dump_state()))
    singles, alternating = [], []

    def both(n):
        pair(one if n % 2 else two, n)

    for _ in range(args.rounds):
        singles.append(timed(lambda n: pair(one, n), args.store_pairs) * 1e3)
        alternating.append(timed(both, args.store_pairs) * 1e3)
    return {
        f"store_ms_per_pair_{stored}": statistics.median(singles),
        f"store_two_processes_ms_per_pair_{stored}": statistics.median(alternating),
        f"charges_after_{stored}": len(one.run(lambda: one.fake.charges, write=False)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="pairs per round (engine)")
    parser.add_argument("--store-pairs", type=int, default=50, help="pairs per round (store)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stored", default="0,1000", help="stored charges for the store runs")
    args = parser.parse_args()
    import django

    django.setup()
    from fakes.stripe import FakeStripe

    result = {}
    engine = FakeStripe()
    result["engine_us_per_pair"] = statistics.median(
        timed(lambda n: pair(engine, n), args.requests) * 1e6 for _ in range(args.rounds)
    )
    for stored in [int(s) for s in args.stored.split(",")]:
        result.update(store_run(stored, args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

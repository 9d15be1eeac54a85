"""The engine's per-request cost, bare and through the sandbox service's journal.

    python benchmarks/engine_paths.py [--requests N] [--rounds R] [--stored 0,1000]

`engine`: a Token + Charge pair straight into FakeStripe.handle() (what the fake server and
fake_stripe() add beneath the stripe library), µs per pair. `service`: the same pair
through SandboxService.handle() (fakes.service: the lock, the change tracking, one journal
record per request written before the answer), with its state in memory and in a
directory, at each number of stored charges, µs per pair. No HTTP; prints one JSON line.
"""

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def service_run(stored, args):
    from fakes.service import SandboxService

    folder = tempfile.mkdtemp(prefix="pb-service-")
    result = {}
    for name, state in (("memory", None), ("journal", folder)):
        service = SandboxService(state)
        try:
            for n in range(stored):
                pair(service.stripe, n)  # straight into the engine: stored, never journaled
            service.recorders["stripe"].discard()
            gc.collect()
            gc.freeze()  # as the service's server does (fakes.server, freeze_gc)

            def through(n, service=service):
                headers = {**HEADERS, "Idempotency-Key": f"tok-{n}-{time.time_ns()}"}
                answer = service.handle("stripe", "POST", "/v1/tokens", "", TOKEN, headers)
                token = json.loads(answer.body)["id"]
                headers["Idempotency-Key"] = f"ch-{n}-{time.time_ns()}"
                body = f"amount=500&currency=usd&source={token}&description=bench+{n}".encode()
                assert (
                    service.handle("stripe", "POST", "/v1/charges", "", body, headers).status == 200
                )

            timings = [timed(through, args.store_pairs) * 1e6 for _ in range(args.rounds)]
            result[f"service_{name}_us_per_pair_{stored}"] = statistics.median(timings)
        finally:
            service.close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="pairs per round (engine)")
    parser.add_argument("--store-pairs", type=int, default=200, help="pairs per round (service)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stored", default="0,1000", help="stored charges for the service runs")
    args = parser.parse_args()
    from fakes.stripe import FakeStripe

    result = {}
    engine = FakeStripe()
    result["engine_us_per_pair"] = statistics.median(
        timed(lambda n: pair(engine, n), args.requests) * 1e6 for _ in range(args.rounds)
    )
    for stored in [int(s) for s in args.stored.split(",")]:
        result.update(service_run(stored, args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Time a stripe.Token.create + stripe.Charge.create pair through each way of faking Stripe.

Prints microseconds per pair and the ratio to the `responses` figure and to a
bare keep-alive http.server. Loopback only. Run:

    .venv/bin/python benchmarks/stripe_fakes.py [--pairs N]
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

import django

django.setup()

import responses  # noqa: E402
import stripe  # noqa: E402

from backend.fakeservices import start_fake_services  # noqa: E402
from payments.testing import (  # noqa: E402
    FakeStripe,
    MockCharge,
    MockToken,
    encode_form,
    fake_stripe,
    stripe_server,
)

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


def realistic_bodies():
    """A complete token and charge as the engine (and Stripe) returns them, for static fakes.

    Static fakes must return objects of the same size: converting a full Charge into
    stripe objects is most of the cost of any layer that returns real Stripe objects.
    """
    engine = FakeStripe()
    headers = {"Authorization": "Bearer sk_test_bench"}
    token = engine.handle("POST", "/v1/tokens", "", encode_form({"card": CARD}).encode(), headers)
    token = json.loads(token.body)
    body = encode_form({"amount": 500, "currency": "usd", "source": token["id"]}).encode()
    charge = json.loads(engine.handle("POST", "/v1/charges", "", body, headers).body)
    return token, charge


TOKEN, CHARGE = realistic_bodies()


def pair():
    token = stripe.Token.create(card=CARD)
    return stripe.Charge.create(amount=500, currency="usd", source=token.id)


def pair_with_card_source():
    """localstripe refuses tok_ sources on charges ("Bad request"): charge the token's card."""
    token = stripe.Token.create(card=CARD)
    return stripe.Charge.create(amount=500, currency="usd", source=token.card.id)


def timed(pairs, run_pair=pair):
    run_pair()  # warm up
    gc.collect()
    start = time.perf_counter()
    for _ in range(pairs):
        run_pair()
    return (time.perf_counter() - start) / pairs * 1e6


def prebuilt(pairs):
    token, charge = (
        stripe.Token.construct_from(TOKEN, "k"),
        stripe.Charge.construct_from(CHARGE, "k"),
    )
    with (
        mock.patch("stripe.Token.create", return_value=token),
        mock.patch("stripe.Charge.create", return_value=charge),
    ):
        return timed(pairs)


def with_responses(pairs):
    with responses.RequestsMock() as rsps, real_client():
        rsps.add(responses.POST, "https://api.stripe.com/v1/tokens", json=TOKEN)
        rsps.add(responses.POST, "https://api.stripe.com/v1/charges", json=CHARGE)
        return timed(pairs)


class StaticStripeClient(stripe.HTTPClient):
    """Answers every request with prebuilt bytes: the floor for any stripe HTTP client fake."""

    name = "static"

    def __init__(self):
        super().__init__()
        from requests.structures import CaseInsensitiveDict

        self.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", "Request-Id": "req_1"}
        )
        self.token, self.charge = json.dumps(TOKEN).encode(), json.dumps(CHARGE).encode()

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        return (self.token if url.endswith("tokens") else self.charge), 200, self.headers

    def close(self):
        pass


def with_static_client(pairs):
    with fake_stripe():  # saves and restores the stripe globals
        stripe.default_http_client = StaticStripeClient()
        return timed(pairs)


def with_mock_token(pairs):
    with (
        fake_stripe(),
        mock.patch("stripe.Token", MockToken),
        mock.patch("stripe.Charge", MockCharge),
    ):
        return timed(pairs)


def with_fake_stripe(pairs):
    with fake_stripe():
        return timed(pairs)


class StaticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(TOKEN if self.path.endswith("tokens") else CHARGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def real_client(base=stripe.DEFAULT_API_BASE):
    """The real stripe client (requests, no retries) pointed at `base`."""
    return stripe_server(base, api_key="sk_test_bench")


def bare_server(pairs):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StaticHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with real_client(f"http://127.0.0.1:{server.server_address[1]}"):
            return timed(pairs)
    finally:
        server.shutdown()
        server.server_close()


def fakeservices_server(pairs):
    server = start_fake_services({"/stripe": FakeStripe()})
    try:
        with real_client(server.url + "/stripe"):
            return timed(pairs)
    finally:
        server.stop()


def construct_only(pairs):
    """The floor for anything that returns real Stripe objects: building them."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(pairs):
        stripe.Token.construct_from(TOKEN, "k")
        stripe.Charge.construct_from(CHARGE, "k")
    return (time.perf_counter() - start) / pairs * 1e6


def _client_process(base_url, source, clients, seconds, results):
    import requests

    body = encode_form({"amount": 500, "currency": "usd", "source": source})
    headers = {
        "Authorization": "Bearer sk_test_bench",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    counts, failures = [0] * clients, [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index):
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                response = session.post(
                    base_url + "/v1/charges", data=body, headers=headers, timeout=10
                )
                if response.status_code == 200:
                    counts[index] += 1
                else:
                    failures[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((sum(counts) / seconds, sum(failures)))


def throughput(base_url, source="tok_visa", clients=8, seconds=3.0):
    """Requests per second from `clients` keep-alive clients in another process.

    The clients run in a child process so that they do not share the server's GIL:
    the figure is the server's, not the load generator's.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(
        target=_client_process, args=(base_url, source, clients, seconds, results)
    )
    process.start()
    rate, failures = results.get(timeout=seconds + 60)
    process.join()
    if failures:
        raise RuntimeError(f"{failures} charges failed against {base_url}: the figure would lie")
    return rate


def served(mounts_or_handler):
    if isinstance(mounts_or_handler, dict):
        return start_fake_services(mounts_or_handler)
    server = ThreadingHTTPServer(("127.0.0.1", 0), mounts_or_handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.stop = lambda: (server.shutdown(), server.server_close())
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


class PeerServer:
    """Another Stripe fake, started as its own process on a free loopback port."""

    name = "the server"

    def __init__(self, argv_for_port, env_for_port=None, timeout=20):
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            argv_for_port(self.port),
            env=env_for_port(self.port) if env_for_port else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class LocalStripe(PeerServer):
    """localstripe (a separate install: `pip install localstripe` in its own venv) on a free port."""

    name = "localstripe"

    def __init__(self, command):
        super().__init__(lambda port: [command, "--port", str(port), "--from-scratch"])


def localstripe_pairs(command, pairs):
    server = LocalStripe(command)
    try:
        with real_client(server.url):
            return timed(pairs, pair_with_card_source)
    finally:
        server.stop()


def memory_per_charge(charges=2000):
    """Bytes the engine keeps per charge (objects, events, request log), by tracemalloc."""
    import tracemalloc

    engine = FakeStripe()
    headers = {"Authorization": "Bearer sk_test_bench"}
    body = encode_form({"amount": 500, "currency": "usd", "source": "tok_visa"}).encode()
    engine.handle("POST", "/v1/charges", "", body, headers)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(charges):
        engine.handle("POST", "/v1/charges", "", body, headers)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / charges


def list_costs(sizes=(0, 20, 10_000, 100_000), calls=100, repeats=5):
    """Microseconds per GET /v1/charges page (limit 10) as the store grows, through handle().

    An empty page costs less than any full one (no charges to encode), so flatness is judged
    against a store of two pages (20 charges, so every query still returns a full page of
    10): `x page` is the worst of 10k/100k over it.
    Each figure is the fastest of `repeats` runs (the machine is shared; the minimum is the
    least noisy estimate of the cost).

    The store is filled with copies of one real charge (new ids, half of them with a
    customer) so that 100k charges fit in memory; a page costs O(limit + log n) either way.
    """
    engine = FakeStripe()
    headers = {"Authorization": "Bearer sk_test_bench"}
    body = encode_form({"amount": 500, "currency": "usd", "source": "tok_visa"}).encode()
    template = json.loads(engine.handle("POST", "/v1/charges", "", body, headers).body)
    engine.reset()
    now = int(time.time())
    queries = {
        "limit=10": lambda ids: "limit=10",
        # on an empty store there is nothing to start after: the plain page is its baseline
        "starting_after (middle)": lambda ids: (
            f"limit=10&starting_after={ids[len(ids) // 2]}" if ids else "limit=10"
        ),
        "created[gte] (newer half)": lambda ids: f"limit=10&created[gte]={now + len(ids) // 2}",
        "customer=cus_bench": lambda ids: "limit=10&customer=cus_bench",
    }
    results, ids = {}, []
    for size in sizes:
        while len(ids) < size:
            charge = {**template, "id": engine.new_id("ch"), "created": now + len(ids)}
            charge["customer"] = "cus_bench" if len(ids) % 2 else None
            engine.store(charge)
            ids.append(charge["id"])
        for name, query in queries.items():
            text = query(ids)
            engine.handle("GET", "/v1/charges", text, b"", headers)  # warm
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(calls):
                    answer = engine.handle("GET", "/v1/charges", text, b"", headers)
                best = min(best, (time.perf_counter() - start) / calls * 1e6)
            assert answer.status == 200, answer.body[:200]
            results.setdefault(name, {})[size] = best
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="pairs per layer per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; each figure is the median")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run")
    parser.add_argument(
        "--localstripe",
        default=os.environ.get("LOCALSTRIPE") or shutil.which("localstripe"),
        help="path to a localstripe executable to compare with (default: $LOCALSTRIPE or PATH)",
    )
    parser.add_argument(
        "--lists-only", action="store_true", help="only the list cost and memory figures"
    )
    args = parser.parse_args()
    per_charge = memory_per_charge()
    print(f"memory: the engine keeps {per_charge / 1024:.2f} KiB per charge (charge, event, log)")
    costs = list_costs()
    sizes = sorted(next(iter(costs.values())))
    print(f"\n{'GET /v1/charges (us per page)':30}" + "".join(f"{size:>10,}" for size in sizes)
          + f"{'x page':>9}")  # fmt: skip
    for name, by_size in costs.items():
        worst = max(by_size[size] for size in sizes if size > 20) / by_size[20]
        print(f"{name:30}" + "".join(f"{by_size[size]:10.0f}" for size in sizes) + f"{worst:9.2f}")
    if args.lists_only:
        return
    runs = [
        ("prebuilt objects (mock.patch)", prebuilt),
        ("construct_from only (floor)", construct_only),
        ("static stripe HTTP client (floor)", with_static_client),
        ("responses, static JSON", with_responses),
        ("MockToken + MockCharge", with_mock_token),
        ("fake_stripe() in-process", with_fake_stripe),
        ("bare keep-alive http.server", bare_server),
        ("fakeservices server", fakeservices_server),
    ]
    if args.localstripe:
        runs.append(("localstripe", lambda pairs: localstripe_pairs(args.localstripe, pairs)))  # fmt: skip
    figures = {name: [] for name, _ in runs}
    for round_number in range(1, args.rounds + 1):
        print(
            f"round {round_number}/{args.rounds}: {len(runs)} layers x {args.pairs} pairs",
            flush=True,
        )
        for name, run in runs:  # interleaved, so drift hits every layer alike
            figures[name].append(run(args.pairs))
    results = {name: statistics.median(values) for name, values in figures.items()}
    base_responses, base_server = (
        results["responses, static JSON"],
        results["bare keep-alive http.server"],
    )
    print(
        f"\n{'layer (median of rounds)':34} {'us/pair':>10} {'x responses':>12} {'x bare server':>14}"
    )
    for name, micros in results.items():
        print(
            f"{name:34} {micros:10.0f} {micros / base_responses:12.2f} {micros / base_server:14.2f}"
        )

    print(
        f"\nthroughput, 8 keep-alive clients, {args.seconds:.0f} s each (POST /v1/charges):",
        flush=True,
    )
    bare = served(StaticHandler)
    bare_rps = throughput(bare.url, seconds=args.seconds)
    bare.stop()
    engine = FakeStripe()
    fake = served({"/stripe": engine})
    fake_rps = throughput(fake.url + "/stripe", seconds=args.seconds)
    objects_after_first = len(engine.objects)
    fake_rps_later = throughput(fake.url + "/stripe", seconds=args.seconds)
    fake.stop()
    print(f"  bare keep-alive http.server        {bare_rps:8.0f} req/s")
    print(
        f"  fakeservices, empty engine         {fake_rps:8.0f} req/s  ({fake_rps / bare_rps:.2f}x bare)"
    )
    print(
        f"  fakeservices, {objects_after_first:>6} objects stored  {fake_rps_later:8.0f} req/s  ({fake_rps_later / bare_rps:.2f}x bare)"
    )
    if args.localstripe:
        server = LocalStripe(args.localstripe)
        with real_client(server.url):
            card_id = stripe.Token.create(card=CARD).card.id  # localstripe refuses tok_ sources
        ls_rps = throughput(server.url, card_id, seconds=args.seconds)
        ls_rps_later = throughput(server.url, card_id, seconds=args.seconds)
        server.stop()
        print(
            f"  localstripe, empty                 {ls_rps:8.0f} req/s  ({ls_rps / bare_rps:.2f}x bare)"
        )
        print(
            f"  localstripe, after a run           {ls_rps_later:8.0f} req/s  ({ls_rps_later / bare_rps:.2f}x bare)"
        )
    else:
        print("\nlocalstripe: not found; install it in its own venv and pass --localstripe PATH.")


if __name__ == "__main__":
    main()

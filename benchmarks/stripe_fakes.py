"""Time a stripe.Token.create + stripe.Charge.create pair through each way of faking Stripe.

Prints microseconds per pair and the ratio to the `responses` figure and to a
bare keep-alive http.server. Loopback only. Run:

    .venv/bin/python benchmarks/stripe_fakes.py [--pairs N]
"""

import argparse
import gc
import json
import os
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
from payments.testing import FakeStripe, MockCharge, MockToken, fake_stripe  # noqa: E402

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
TOKEN = {"id": "tok_1", "object": "token", "card": {"id": "card_1", "object": "card", "brand": "Visa",
         "exp_month": 12, "exp_year": 2035, "funding": "credit", "last4": "4242"},
         "client_ip": None, "created": 1, "livemode": False, "type": "card", "used": False}  # fmt: skip
CHARGE = {"id": "ch_1", "object": "charge", "amount": 500, "currency": "usd", "status": "succeeded",
          "paid": True, "captured": True, "livemode": False, "metadata": {}}  # fmt: skip


def pair():
    token = stripe.Token.create(card=CARD)
    return stripe.Charge.create(amount=500, currency="usd", source=token.id)


def timed(pairs):
    pair()  # warm up
    gc.collect()
    start = time.perf_counter()
    for _ in range(pairs):
        pair()
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


class real_client:
    def __init__(self, base=None):
        self.base = base

    def __enter__(self):
        self.saved = (
            stripe.api_base,
            stripe.api_key,
            stripe.default_http_client,
            stripe.max_network_retries,
        )
        stripe.api_key, stripe.max_network_retries = "sk_test_bench", 0
        stripe.default_http_client = stripe.RequestsClient(timeout=5)
        if self.base:
            stripe.api_base = self.base

    def __exit__(self, *exc):
        stripe.api_base, stripe.api_key, stripe.default_http_client, stripe.max_network_retries = (
            self.saved
        )


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()
    runs = [("prebuilt objects (mock.patch)", prebuilt), ("responses, static JSON", with_responses),
            ("MockToken + MockCharge", with_mock_token), ("fake_stripe() in-process", with_fake_stripe),
            ("bare keep-alive http.server", bare_server), ("fakeservices server", fakeservices_server)]  # fmt: skip
    results = {}
    for name, run in runs:
        print(f"timing {name} ({args.pairs} pairs)...", flush=True)
        results[name] = run(args.pairs)
    base_responses, base_server = (
        results["responses, static JSON"],
        results["bare keep-alive http.server"],
    )
    print(f"\n{'layer':34} {'us/pair':>10} {'x responses':>12} {'x bare server':>14}")
    for name, micros in results.items():
        print(
            f"{name:34} {micros:10.0f} {micros / base_responses:12.2f} {micros / base_server:14.2f}"
        )
    print("\nlocalstripe: not installed here (install it only to compare).")


if __name__ == "__main__":
    main()

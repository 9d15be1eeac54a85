"""A static Stripe stub: the engine's own token and charge bytes, answered as they are.

    python benchmarks/stripe_stub.py --port P

The baseline of the sandbox payments benchmark (benchmarks/sandbox_payments.py): the
backend under gunicorn talks to it as to Stripe (STRIPE_API_BASE), and it costs next to
nothing per answer (uvicorn + the fakes' ASGI adapter, prebuilt bytes). No Django.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes.contract import FakeResponse
from fakes.server import FakeServer
from fakes.stripe import FakeStripe, encode_form

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


def realistic_bodies():
    engine = FakeStripe()
    headers = {"Authorization": "Bearer sk_test_stub"}
    token = engine.handle("POST", "/v1/tokens", "", encode_form({"card": CARD}).encode(), headers)
    body = encode_form({"amount": 500, "currency": "usd", "source": json.loads(token.body)["id"]})
    charge = engine.handle("POST", "/v1/charges", "", body.encode(), headers)
    return token.body, charge.body


class StaticStripe:
    def __init__(self):
        self.token, self.charge = realistic_bodies()

    def handle(self, method, path, query, body, headers):
        return FakeResponse.json(200, self.token if path.endswith("/tokens") else self.charge)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = FakeServer({"/stripe": StaticStripe()}, port=args.port, freeze_gc=True)
    print(f"static Stripe stub on {server.url}/stripe", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

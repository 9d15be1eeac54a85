"""Each endpoint stripe-python knows, marked as the fake answers it: stateful, generic or
refused (moto publishes the same from its SDK's model). `python -m fakes.stripe.coverage`
prints the counts docs/fake-stripe.md reports."""

import stripe

from fakes.stripe.engine import MODELLED
from fakes.stripe.engine import STATEFUL as HANDLERS
from fakes.stripe.routes import endpoints

STATEFUL, GENERIC, REFUSED = "stateful", "generic", "refused"


def classify(endpoint):
    if not endpoint.template.startswith("/v1/"):
        return REFUSED  # /v2 takes JSON bodies and another error shape: not faked
    if (endpoint.method, endpoint.template) in HANDLERS:
        return STATEFUL
    cls = endpoint.resource_class()
    if cls is None:
        return REFUSED  # answers a union (card | bank account | source) or nothing declared
    if endpoint.kind == "search":
        return STATEFUL if cls.OBJECT_NAME in MODELLED else GENERIC
    return GENERIC


def coverage():
    table = {STATEFUL: [], GENERIC: [], REFUSED: []}
    for endpoint in endpoints():
        table[classify(endpoint)].append(endpoint)
    return table


def main():
    table = coverage()
    total = sum(len(v) for v in table.values())
    print(f"{total} endpoints in stripe-python (stripe {stripe.VERSION}):")
    for name, found in table.items():
        print(f"  {name:9} {len(found):4}")
    print("stateful:", ", ".join(f"{e.method} {e.template}" for e in table[STATEFUL]))


if __name__ == "__main__":
    main()

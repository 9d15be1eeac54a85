"""The scenario driver: a money operation against every fault, retried, webhooks in any order.

    from payments.testing import MoneyOperation, ScenarioDriver

    pay = MoneyOperation(
        "token payment",
        lambda test, ctx, key: test.client.post(
            reverse("payments"), {"token": "tok_visa", "amount": 500},
            format="json", HTTP_IDEMPOTENCY_KEY=key,
        ),
        done={201},
    )
    ScenarioDriver(self).run(pay)     # in a FakeStripeMixin test

For an operation, the driver first runs it once without faults (the probe) to learn
how many Stripe calls it makes. Then, for each of those calls and each fault kind
(api_error, rate_limit, timeout, connection_error, lost_response), on fresh
setup and a fresh Idempotency-Key, it:

1. makes the request with the fault striking that call: the answer must be the
   operation's success or a 503 with Retry-After, never a 500;
2. retries the same request with the same key: it must succeed, and a retry of a
   success is a replay of the same answer;
3. delivers every webhook event the case produced, each one twice, in every order
   (each order from the same starting point, inside a rolled-back savepoint), then
   once for real.

The ledger invariant (payments.testing.ledger) is checked after every step and
every delivery. The engine may be the sandbox service, over HTTP
(payments.testing.service.ServiceStripe): the same journeys, faults scripted through
its control API. The stripe library's own retries are off by default
(library_retries=0) so each fault reaches the application; pass library_retries=2
to check the library absorbs single faults instead, and webhooks_before_retry=True
to have the first attempt's webhooks arrive before the client retries.
"""

import itertools
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.test import override_settings
from rest_framework.test import APIClient

from fakes.contract import FAULT_KINDS as _KINDS
from fakes.contract import TransportFault
from fakes.stripe.client import stripe_globals
from payments.testing.ledger import assert_ledger_matches
from payments.testing.webhooks import post_signed_event

# The fault kinds a Stripe call can meet (slow_response is the push provider's only).
FAULT_KINDS = ("api_error", "rate_limit", "timeout", "connection_error", "lost_response")
assert set(FAULT_KINDS) <= _KINDS
WEBHOOK_SECRET = "whsec_scenario_driver"


@dataclass
class MoneyOperation:
    """One request that moves money, and how to make it again.

    request(test, context, idempotency_key) makes the API call and returns the response;
    setup(test) prepares what each case needs (e.g. a payment to refund) and returns the
    context; done is the set of HTTP statuses meaning the operation completed.
    """

    name: str
    request: callable
    done: set = field(default_factory=lambda: {200, 201})
    setup: callable = None


class CallFaults:
    """Takes the engine's FaultPlan's place: one fault at the n-th Stripe call it sees.

    It also records every call ("POST /v1/charges"), so the probe learns how many
    calls the operation makes.
    """

    def __init__(self, index=None, kind=None, plan=()):
        # plan: the calls the probe made (a sandbox service strikes by endpoint, not count)
        self.index, self.kind, self.calls, self.plan = index, kind, [], list(plan)

    def before_request(self, method, path):
        position = len(self.calls)
        self.calls.append(f"{method.upper()} {path}")
        if position != self.index:
            return None
        if self.kind in ("timeout", "connection_error"):
            raise TransportFault(self.kind)
        return self.kind

    def add(self, *args, **kwargs):
        raise RuntimeError("the scenario driver owns the faults for this request")

    def take(self, method, path):
        return None

    def clear(self):
        pass


class ScenarioDriver:
    def __init__(
        self,
        test,
        engine=None,
        library_retries=0,
        max_orders=None,
        strict=True,
        webhooks_before_retry=False,
    ):
        self.test = test
        # True: the first attempt's webhooks arrive (in order) before the client retries.
        self.webhooks_before_retry = webhooks_before_retry
        self.engine = engine or test.stripe
        self.library_retries = library_retries
        self.max_orders = max_orders  # None: every order
        self.strict = strict  # after a retry, nothing may be left pending
        self.cases = []  # (label, first status, retry status, orders delivered)
        self.webhooks = APIClient()

    # ------------------------------------------------------------------ steps
    def check(self, label, pending_ok=True):
        assert_ledger_matches(self.engine, pending_ok=pending_ok, msg=label)

    def request(self, operation, context, key, faults=None):
        script = getattr(self.engine, "script", None)  # the sandbox service, over HTTP
        if script is not None:
            with script(faults), stripe_globals(max_network_retries=self.library_retries):
                response = operation.request(self.test, context, key)
        else:
            saved = self.engine.faults
            if faults is not None:
                self.engine.faults = faults
            try:
                with stripe_globals(max_network_retries=self.library_retries):
                    response = operation.request(self.test, context, key)
            finally:
                self.engine.faults = saved
        self.test.assertNotEqual(response.status_code, 500, response.content)
        return response

    def deliver(self, event):
        with override_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET):
            response = post_signed_event(self.webhooks, event, WEBHOOK_SECRET)
        self.test.assertEqual(response.status_code, 200, (event["type"], response.content))
        return response

    def orders(self, events):
        """Every order (max_orders=None), or as given first: as produced, reversed, others."""
        if self.max_orders is None:
            return list(itertools.permutations(events))
        chosen = [tuple(events)]
        if len(events) > 1:
            chosen.append(tuple(reversed(events)))
        others = (o for o in itertools.permutations(events) if o not in chosen)
        chosen += itertools.islice(others, max(self.max_orders - len(chosen), 0))
        return chosen[: self.max_orders]

    def deliver_in_every_order(self, events, label, check_each=True):
        """Each order from the same start (rolled back after), then once for real.

        check_each=False checks once each order is fully delivered: for news the
        application has not heard otherwise (a refund that settled later at Stripe),
        the ledger can only agree once every affected payment's webhook has arrived.
        """
        orders = self.orders(events) if events else []
        for number, order in enumerate(orders):
            with transaction.atomic():
                for step, event in enumerate([*order, *order]):  # each event twice
                    self.deliver(event)
                    if check_each:
                        self.check(f"{label}: order {number}, delivery {step} ({event['type']})")
                self.check(f"{label}: order {number} delivered")
                transaction.set_rollback(True)
        for event in events:
            self.deliver(event)
            self.deliver(event)
        self.check(f"{label}: after its webhooks")
        return len(orders)

    # ------------------------------------------------------------------ runs
    def probe(self, operation):
        """Run once without faults; returns the Stripe calls it made."""
        context = operation.setup(self.test) if operation.setup else None
        mark = len(self.engine.events)
        recorder = CallFaults()
        response = self.request(operation, context, self.new_key(operation), recorder)
        self.test.assertIn(response.status_code, operation.done, response.content)
        self.check(f"{operation.name}: probe", pending_ok=not self.strict)
        self.deliver_in_every_order(self.engine.events[mark:], f"{operation.name}: probe")
        return recorder.calls

    def run(self, operation, faults=FAULT_KINDS, calls=None):
        """Every fault kind at every Stripe call of the operation (or the given call indexes)."""
        made = self.probe(operation)
        self.test.assertTrue(made, f"{operation.name} made no Stripe call")
        for index in range(len(made)) if calls is None else calls:
            for kind in faults:
                self.run_case(operation, index, kind, made[index], made)
        return self.cases

    def run_case(self, operation, index, kind, call, made=()):
        label = f"{operation.name}: {kind} at call {index} ({call})"
        context = operation.setup(self.test) if operation.setup else None
        mark = len(self.engine.events)
        key = self.new_key(operation)
        first = self.request(operation, context, key, CallFaults(index, kind, made))
        self.test.assertIn(first.status_code, {*operation.done, 503}, (label, first.content))
        if first.status_code == 503:
            self.test.assertIn("Retry-After", first, label)
        self.check(f"{label}: after the first attempt")
        if self.webhooks_before_retry:
            for event in self.engine.events[mark:]:
                self.deliver(event)
                self.check(f"{label}: {event['type']} before the retry")
        retry = self.request(operation, context, key)
        self.test.assertIn(retry.status_code, operation.done, (label, retry.content))
        if first.status_code in operation.done:
            self.test.assertEqual(retry.json(), first.json(), f"{label}: replay differs")
            self.test.assertEqual(retry.get("Idempotent-Replayed"), "true", label)
        self.check(f"{label}: after the retry", pending_ok=not self.strict)
        orders = self.deliver_in_every_order(self.engine.events[mark:], label)
        self.cases.append((label, first.status_code, retry.status_code, orders))

    @staticmethod
    def new_key(operation):
        return f"scenario-{operation.name.replace(' ', '-')}-{uuid.uuid4().hex[:12]}"

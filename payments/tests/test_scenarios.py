"""The scenario driver over every money operation: each fault kind at each Stripe call.

Always on: every fault kind at every call of each operation, with the stripe
library's retries off (each fault reaches the application), webhooks in every
order. SLOW_TESTS=1 (which .ci/run sets) adds the library-retry variants.
"""

import contextlib
import logging
import os
import threading
import unittest

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.urls import reverse
from rest_framework.test import APIClient, APITestCase

from payments.models import Payment, Refund
from payments.testing import (
    FakeStripeMixin,
    MoneyOperation,
    ScenarioDriver,
    assert_ledger_matches,
    fake_stripe,
)
from payments.testing.scenarios import FAULT_KINDS
from payments.testing.service import SandboxServiceMixin
from payments.testing.webhooks import post_signed_event

User = get_user_model()
SLOW = os.environ.get("SLOW_TESTS") == "1"
SECRET = "whsec_concurrent_scenarios"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def pay(data, done=frozenset({201})):
    def request(test, context, key):
        test.client.force_authenticate(test.user)
        return test.client.post(reverse("payments"), data, format="json", HTTP_IDEMPOTENCY_KEY=key)

    return request


def refund_setup(number="4242424242424242"):
    def setup(test):
        test.client.force_authenticate(test.user)
        response = test.client.post(
            reverse("payments"), {**CARD, "number": number, "amount": 1000}, format="json"
        )
        test.assertEqual(response.status_code, 201)
        return response.json()["id"]

    return setup


def refund(test, payment_id, key):
    test.client.force_authenticate(test.staff)
    url = reverse("payment-refund", args=[payment_id])
    return test.client.post(url, {"amount": 400}, format="json", HTTP_IDEMPOTENCY_KEY=key)


OPERATIONS = {
    "raw card payment": MoneyOperation("raw card payment", pay({**CARD, "amount": 500}), {201}),
    "token payment": MoneyOperation(
        "token payment", pay({"token": "tok_visa", "amount": 500}), {201}
    ),
    "payment intent": MoneyOperation(
        "payment intent", pay({"payment_method": "pm_card_visa", "amount": 700}), {201}
    ),
    "refund": MoneyOperation("refund", refund, {200}, setup=refund_setup()),
}


@override_settings(PAYMENTS_THROTTLE="1000/hour")  # the driver makes many attempts
class ScenarioDriverTests(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("payer")
        self.staff = User.objects.create_user("staff", is_staff=True)

    def drive(self, name, library_retries=0, **options):
        # Always on: as produced and reversed; every order with SLOW_TESTS=1.
        options.setdefault("max_orders", None if SLOW else 2)
        driver = ScenarioDriver(self, library_retries=library_retries, **options)
        with quiet(self):
            cases = driver.run(OPERATIONS[name])
        # Every kind struck every call, and the runs were real: some answered 503.
        kinds = {label.split(": ")[1].split(" at ")[0] for label, *_ in cases}
        self.assertEqual(kinds, set(FAULT_KINDS))
        if not library_retries:
            self.assertIn(503, [first for _, first, *_ in cases])
        self.assertFalse(Payment.objects.filter(status="pending").exists())
        self.assertFalse(Refund.objects.filter(status="pending").exists())
        return cases

    def test_raw_card_payments(self):
        cases = self.drive("raw card payment")
        self.assertEqual(len(cases), 2 * len(FAULT_KINDS))  # POST /v1/tokens, POST /v1/charges
        self.assertEqual(Payment.objects.filter(status="succeeded").count(), 1 + len(cases))

    def test_token_payments(self):
        cases = self.drive("token payment")
        self.assertEqual(len(cases), len(FAULT_KINDS))
        self.assertEqual(len([c for c in self.stripe.charges if c["paid"]]), 1 + len(cases))

    def test_payment_intents(self):
        cases = self.drive("payment intent")
        orders = {orders for *_, orders in cases}
        self.assertEqual(orders, {6} if SLOW else {2}, "3 events: 6 orders, or the 2 always run")

    def test_refunds(self):
        cases = self.drive("refund")
        self.assertEqual(len(self.stripe.all("refund")), 1 + len(cases))
        self.assertEqual(set(Payment.objects.values_list("amount_refunded", flat=True)), {400})

    def test_refunds_whose_webhooks_arrive_before_the_retry(self):
        self.drive("refund", webhooks_before_retry=True, max_orders=1)
        self.assertEqual(len(self.stripe.all("refund")), Refund.objects.count())

    @unittest.skipUnless(SLOW, "webhooks-before-retry variants: set SLOW_TESTS=1")
    def test_payments_whose_webhooks_arrive_before_the_retry(self):
        for name in ("raw card payment", "token payment", "payment intent"):
            with self.subTest(name):
                self.drive(name, webhooks_before_retry=True)

    @unittest.skipUnless(SLOW, "library-retry variants: set SLOW_TESTS=1")
    def test_every_operation_with_the_librarys_retries(self):
        for name in OPERATIONS:
            with self.subTest(name):
                driver = ScenarioDriver(self, library_retries=2)
                with quiet(self):
                    cases = driver.run(OPERATIONS[name])
                # The library retries 5xx and network faults itself; a 429 reaches us.
                for label, first, *_ in cases:
                    if "rate_limit" not in label:
                        self.assertIn(first, OPERATIONS[name].done, label)

    @unittest.skipUnless(SLOW, "refund test cards through the driver: set SLOW_TESTS=1")
    def test_refunds_of_the_asynchronous_refund_cards(self):
        for number in ("4000000000005126", "4000000000007726"):
            with self.subTest(number):
                operation = MoneyOperation(
                    f"refund {number}", refund, {200}, setup=refund_setup(number)
                )
                driver = ScenarioDriver(self, strict=number != "4000000000007726", max_orders=2)
                with quiet(self):
                    driver.run(operation)
                mark = len(self.stripe.events)
                self.assertTrue(self.stripe.settle_refunds())
                later = self.stripe.events[mark:]
                driver.deliver_in_every_order(later, "settled later", check_each=False)
                assert_ledger_matches(self.stripe, pending_ok=False)


@unittest.skipIf(
    connection.vendor == "sqlite",
    "SQLite serialises writers; concurrent requests only race on PostgreSQL",
)
@override_settings(PAYMENTS_THROTTLE="1000/hour")
class ConcurrentScenarioTests(TransactionTestCase):
    """Refunds and payments from real threads, faults injected, webhooks raced."""

    def test_concurrent_refunds_through_faults_then_raced_webhooks(self):
        engine = self.enterContext(fake_stripe())
        owner = User.objects.create_user("owner")
        staff = User.objects.create_user("staff", is_staff=True)
        client = APIClient()
        client.force_authenticate(owner)
        body = client.post(reverse("payments"), {**CARD, "amount": 1000}, format="json").json()
        url = reverse("payment-refund", args=[body["id"]])
        kinds = list(FAULT_KINDS) * 2
        for kind in kinds:  # one of each kind, twice, at the next refund calls
            engine.faults.add("POST /v1/refunds", kind, times=3)
        results = {}
        barrier = threading.Barrier(len(kinds))

        def attempt(number):
            client = APIClient()
            client.force_authenticate(staff)
            barrier.wait()
            try:
                for _ in range(10):  # retry a 503/409 with the same key, as a client would
                    response = client.post(
                        url, {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{number}"
                    )
                    results.setdefault(number, []).append(response.status_code)
                    if response.status_code == 200:
                        break
                    assert_no_500(response)
            finally:
                connection.close()

        with quiet(self):  # each 503 logs a warning, from the threads
            run_threads(attempt, len(kinds))
        self.assertEqual(sorted(r[-1] for r in results.values()), [200] * len(kinds))
        self.assertNotIn(500, [code for codes in results.values() for code in codes])
        self.assertEqual(len(engine.all("refund")), len(kinds))
        assert_ledger_matches(engine, pending_ok=False)

        events, statuses = list(engine.events), []

        def deliver(number):
            client = APIClient()
            try:
                for event in events if number % 2 else reversed(events):
                    response = post_signed_event(client, event, SECRET)
                    statuses.append(response.status_code)
            finally:
                connection.close()

        with override_settings(STRIPE_WEBHOOK_SECRET=SECRET):
            run_threads(deliver, 4)
        self.assertEqual(set(statuses), {200})
        self.assertEqual(len(statuses), 4 * len(events))
        assert_ledger_matches(engine, pending_ok=False)
        self.assertEqual(Payment.objects.get().amount_refunded, 100 * len(kinds))


@contextlib.contextmanager
def quiet(test):
    """Capture the warnings a fault run logs (and do not require any)."""
    with test.assertLogs("payments", "DEBUG"), test.assertLogs("django.request", "DEBUG"):
        logging.getLogger("payments").debug("scenario run")
        logging.getLogger("django.request").debug("scenario run")
        yield


def assert_no_500(response):
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(response.content)


def run_threads(target, count):
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


class ScenarioDriverOverHTTPTests(SandboxServiceMixin, ScenarioDriverTests):
    """Every journey above with Stripe the sandbox service, over HTTP, as in sandbox mode:
    the faults scripted through its control API, the ledger read from it."""

"""The money checks over the fake Stripe (docs/testing-harness.md, "Checking the money"):
the ledger invariant, the scenario driver, and the network guard."""

import requests
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase
from django.urls import reverse
from rest_framework.test import APITestCase

from fakes import netguard
from payments.models import Payment
from payments.testing import (
    FakeStripeMixin,
    LedgerAssertionsMixin,
    MoneyOperation,
    ScenarioDriver,
)

User = get_user_model()
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


# --8<-- [start:ledger]
class LedgerTest(LedgerAssertionsMixin, FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.client.force_authenticate(User.objects.create_user("ada"))

    def test_the_ledger_matches_stripe_and_says_where_it_does_not(self):
        self.client.post(reverse("payments"), {**CARD, "amount": 500}, format="json")
        self.assertLedgerMatches()  # every Payment and Refund row against the fake Stripe

        payment = Payment.objects.get()
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=200)  # a ledger bug
        with self.assertRaises(AssertionError) as failure:
            self.assertLedgerMatches()
        self.assertEqual(
            str(failure.exception),
            "Ledger does not match the fake Stripe (2 differences):\n"
            f"  payment {payment.pk} ({payment.stripe_charge_id}): amount_refunded"
            "  ledger=200  stripe=0\n"
            f"  payment {payment.pk}: amount_refunded 200 but its Refund rows sum to 0",
        )


# --8<-- [end:ledger]


# --8<-- [start:scenario-driver]
def make_paid_payment(test):
    test.client.force_authenticate(test.user)
    paid = test.client.post(reverse("payments"), {**CARD, "amount": 1000}, format="json")
    return paid.json()["id"]  # the context the request gets


def ask_for_a_refund(test, payment_id, key):
    test.client.force_authenticate(test.staff)
    return test.client.post(
        reverse("payment-refund", args=[payment_id]),
        {"amount": 400},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


class RefundScenarios(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("ada")
        self.staff = User.objects.create_user("staff", is_staff=True)

    def test_refund_through_every_fault(self):
        refund = MoneyOperation("refund", ask_for_a_refund, done={200}, setup=make_paid_payment)
        driver = ScenarioDriver(self)  # library_retries=0: every fault reaches the app
        driver.run(refund)
        self.assertGreaterEqual(len(driver.cases), 5)  # each fault kind at each Stripe call


# --8<-- [end:scenario-driver]


# --8<-- [start:network-guard]
class NetworkGuardTest(SimpleTestCase):
    def test_a_test_cannot_leave_the_machine(self):
        with self.assertRaises(netguard.NetworkBlocked) as blocked:
            requests.get("https://api.stripe.com/v1/charges", timeout=5)
        self.assertIn("api.stripe.com:443", str(blocked.exception))
        self.assertIn("fake_stripe()", str(blocked.exception))  # the advice names the fake


# --8<-- [end:network-guard]

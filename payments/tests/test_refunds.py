"""Refunds as records, Stripe as the source of truth, webhooks in any order.

Each scenario from issue 9's "Why" is a test here, and each checks the ledger
invariant (payments.testing.ledger) against the fake Stripe.
"""

import io
import threading
import unittest
from datetime import timedelta
from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient, APITestCase

from payments.models import Payment, Refund, StripeEvent
from payments.testing import (
    FakeStripeMixin,
    LedgerAssertionsMixin,
    assert_ledger_matches,
    fake_stripe,
)
from payments.testing.webhooks import post_signed_event
from payments.tests.helpers import expect_stripe_unavailable

User = get_user_model()
SECRET = "whsec_refund_tests"
CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123"}


def card(number, amount=1000):
    return {"number": number, **CARD, "amount": amount}


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
class RefundTestCase(LedgerAssertionsMixin, FakeStripeMixin, APITestCase):
    number = "4242424242424242"

    def setUp(self):
        super().setUp()
        self.owner = User.objects.create_user("owner")
        self.staff = User.objects.create_user("staff", is_staff=True)
        self.payment_id = self.pay(card(self.number)).json()["id"]

    def pay(self, data, key=None):
        self.client.force_authenticate(self.owner)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        response = self.client.post(reverse("payments"), data, format="json", **headers)
        self.assertIn(response.status_code, (201, 202), response.content)
        return response

    def refund(self, data=None, key=None, payment_id=None):
        self.client.force_authenticate(self.staff)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        url = reverse("payment-refund", args=[payment_id or self.payment_id])
        return self.client.post(url, data or {}, format="json", **headers)

    def deliver(self, event):
        return post_signed_event(self.client, event, SECRET)

    def events(self, *types):
        return [e for e in self.stripe.events if not types or e["type"] in types]

    def refund_calls(self):
        return [r for r in self.stripe.requests if r[:2] == ("POST", "/v1/refunds")]

    @property
    def payment(self):
        return Payment.objects.get(pk=self.payment_id)


class RefundRecordTests(RefundTestCase):
    def test_a_refund_is_a_record_shown_on_the_payment(self):
        response = self.refund({"amount": 300, "reason": "requested_by_customer"})
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual((body["status"], body["amount_refunded"]), ("partially_refunded", 300))
        [stripe_refund] = self.stripe.all("refund")
        self.assertEqual(body["refund"]["stripe_refund_id"], stripe_refund["id"])
        row = Refund.objects.get()
        self.assertEqual(
            (row.amount, row.reason, row.status, row.requested_by), (300, "requested_by_customer", "succeeded", self.staff)
        )  # fmt: skip
        self.assertEqual(stripe_refund["metadata"]["refund_reference"], str(row.reference))
        self.client.force_authenticate(self.owner)
        detail = self.client.get(reverse("payment-detail", args=[self.payment_id])).json()
        self.assertEqual([r["amount"] for r in detail["refunds"]], [300])
        self.assertNotIn("idempotency_key", detail["refunds"][0])
        self.assertLedgerMatches(pending_ok=False)

    def test_amounts_and_reasons_are_strict_and_never_echoed(self):
        for bad in ("\u0661\u0660\u0660", "100", 1.5, True, 2**31):
            response = self.refund({"amount": bad})
            self.assertEqual(response.status_code, 400, bad)
            self.assertEqual(response.json()["error"]["param"], "amount", bad)
        response = self.refund({"reason": "becauseX"})
        self.assertEqual(response.json()["error"]["code"], "validation_error")
        self.assertNotIn("becauseX", response.content.decode())
        self.assertEqual((Refund.objects.count(), self.stripe.all("refund")), (0, []))

    def test_the_stripe_idempotency_key_comes_from_the_row(self):
        with mock.patch("stripe.Refund.create", wraps=stripe.Refund.create) as create:
            self.refund({"amount": 100})
            self.refund({"amount": 100})
        keys = [call.kwargs["idempotency_key"] for call in create.call_args_list]
        rows = Refund.objects.order_by("pk")
        self.assertEqual(keys, [f"refund-{row.reference}" for row in rows])
        self.assertEqual(len(set(keys)), 2, "two refunds never share a Stripe key")

    def test_without_a_key_each_request_is_a_new_refund(self):
        self.assertEqual(self.refund({"amount": 100}).status_code, 200)
        self.assertEqual(self.refund({"amount": 100}).status_code, 200)
        self.assertEqual(len(self.stripe.all("refund")), 2)
        self.assertEqual(self.payment.amount_refunded, 200)
        self.assertLedgerMatches(pending_ok=False)

    def test_same_key_and_body_replays_without_calling_stripe(self):
        """Why #2: a client that timed out retries the same refund."""
        first = self.refund({"amount": 300}, key="refund-order-1")
        second = self.refund({"amount": 300}, key="refund-order-1")
        self.assertEqual((first.status_code, second.status_code), (200, 200))
        self.assertEqual(first.json(), second.json())
        self.assertEqual(second["Idempotent-Replayed"], "true")
        self.assertEqual(len(self.refund_calls()), 1)
        self.assertEqual(len(self.stripe.all("refund")), 1)
        self.assertEqual(self.payment.amount_refunded, 300)
        self.assertLedgerMatches(pending_ok=False)

    def test_same_key_different_body_is_422(self):
        self.refund({"amount": 300}, key="k")
        response = self.refund({"amount": 400}, key="k")
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json()["error"]["code"], "idempotency_key_reused")
        self.assertEqual(len(self.stripe.all("refund")), 1)

    def test_a_duplicate_while_the_first_is_in_flight_is_409(self):
        self.refund({"amount": 300}, key="busy")
        Refund.objects.update(
            response_body=None, locked_until=timezone.now() + timedelta(minutes=1)
        )
        response = self.refund({"amount": 300}, key="busy")
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json()["error"]["code"], "idempotency_request_in_progress")
        self.assertEqual(len(self.refund_calls()), 1)

    def test_keys_are_per_payment_and_bounded(self):
        other = self.pay(card("4242424242424242", 500)).json()["id"]
        self.assertEqual(self.refund({"amount": 100}, key="same").status_code, 200)
        response = self.refund({"amount": 100}, key="same", payment_id=other)
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("Idempotent-Replayed", response)
        response = self.refund({"amount": 100}, key="k" * 256)
        self.assertEqual(response.json()["error"]["code"], "invalid_idempotency_key")
        self.assertEqual(len(self.stripe.all("refund")), 2)

    def test_over_refund_is_refused_before_stripe_is_called(self):
        self.refund({"amount": 600})
        response = self.refund({"amount": 401})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "amount_too_large")
        self.assertEqual(len(self.refund_calls()), 1)
        self.assertEqual(Refund.objects.count(), 1, "no record for a refused request")
        self.assertEqual(self.refund().json()["amount_refunded"], 1000)
        response = self.refund({"amount": 1})
        self.assertEqual(response.json()["error"]["code"], "payment_not_refundable")
        self.assertLedgerMatches(pending_ok=False)

    def test_ten_refunds_with_different_keys_each_count_once(self):
        """Why #1, sequentially (the concurrent version runs on PostgreSQL)."""
        for number in range(10):
            response = self.refund({"amount": 100}, key=f"ten-{number}")
            self.assertEqual(response.status_code, 200, response.content)
        response = self.refund({"amount": 100}, key="eleventh")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(len(self.stripe.all("refund")), 10)
        self.assertEqual((self.payment.amount_refunded, self.payment.status), (1000, "refunded"))
        self.assertLedgerMatches(pending_ok=False)

    def test_a_payment_intent_payment_is_refunded_through_its_charge(self):
        intent_payment = self.pay({"payment_method": "pm_card_visa", "amount": 800}).json()
        response = self.refund({"amount": 800}, payment_id=intent_payment["id"])
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["status"], "refunded")
        self.assertLedgerMatches(pending_ok=False)

    def test_a_failed_payment_is_not_refundable(self):
        failed = self.client.post(reverse("payments"), card("4000000000000002"), format="json")
        response = self.refund(payment_id=failed.json()["error"]["payment"])
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "payment_not_refundable")
        self.assertEqual(self.refund_calls(), [])

    def test_stripes_refusal_is_recorded_and_the_figures_catch_up_by_webhook(self):
        stripe.Refund.create(charge=self.payment.stripe_charge_id)  # in the Dashboard
        response = self.refund({"amount": 100})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "charge_already_refunded")
        self.assertEqual(Refund.objects.get().status, "failed")
        with self.assertRaisesMessage(AssertionError, "has no Refund row"):
            self.assertLedgerMatches()
        for event in self.events():
            self.assertEqual(self.deliver(event).status_code, 200)
        self.assertEqual((self.payment.status, self.payment.amount_refunded), ("refunded", 1000))
        self.assertLedgerMatches(pending_ok=False)


class LostAnswerTests(RefundTestCase):
    def test_a_lost_answer_is_503_pending_and_a_retry_completes_it_once(self):
        """Why #3: the answer is lost, then the same request is retried."""
        self.stripe.faults.add("POST /v1/refunds", "lost_response", times=3)
        with expect_stripe_unavailable(self):
            first = self.refund({"amount": 300}, key="lost-1")
        self.assertEqual(first.status_code, 503)
        self.assertEqual(first.json()["error"]["code"], "payment_provider_unavailable")
        self.assertIn("Retry-After", first)
        self.assertEqual(Refund.objects.get().status, "pending")
        self.assertEqual(
            len(self.stripe.all("refund")), 1, "Stripe did refund; the answer was lost"
        )
        self.assertLedgerMatches()  # pending: not known yet, but never twice
        second = self.refund({"amount": 300}, key="lost-1")
        self.assertEqual(second.status_code, 200, second.content)
        self.assertEqual(len(self.stripe.all("refund")), 1)
        row = Refund.objects.get()
        self.assertEqual(len({r[2].get("amount") for r in self.refund_calls()}), 1)
        self.assertEqual(
            (row.status, row.stripe_refund_id), ("succeeded", self.stripe.all("refund")[0]["id"])
        )
        self.assertEqual(self.payment.amount_refunded, 300)
        self.assertLedgerMatches(pending_ok=False)

    def test_a_pending_refund_reserves_its_amount(self):
        self.stripe.faults.add("POST /v1/refunds", "timeout", times=3)
        with expect_stripe_unavailable(self):
            self.refund({"amount": 700}, key="reserve")
        response = self.refund({"amount": 400})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "amount_too_large")
        self.assertEqual(self.stripe.all("refund"), [])

    def test_reconcile_settles_a_lost_refund_and_fails_one_never_made(self):
        self.stripe.faults.add("POST /v1/refunds", "lost_response", times=3)
        with expect_stripe_unavailable(self):
            self.refund({"amount": 300}, key="made")
        self.stripe.faults.add("POST /v1/refunds", "connection_error", times=3)
        with expect_stripe_unavailable(self):
            self.refund({"amount": 200}, key="never-made")
        Refund.objects.update(created_at=timezone.now() - timedelta(minutes=10))
        out = io.StringIO()
        call_command("reconcile_payments", stdout=out)
        self.assertIn("refunds: settled 1, marked failed 1", out.getvalue())
        made, never = Refund.objects.order_by("pk")
        self.assertEqual(
            (made.status, never.status, never.failure_reason),
            ("succeeded", "failed", "not_refunded"),
        )
        self.assertEqual(self.payment.amount_refunded, 300)
        self.assertLedgerMatches(pending_ok=False)
        # The failed one released its reservation; retrying its key does not call Stripe again.
        calls = len(self.refund_calls())
        retry = self.refund({"amount": 200}, key="never-made")
        self.assertEqual((retry.status_code, retry.json()["error"]["code"]), (400, "not_refunded"))
        self.assertEqual(len(self.refund_calls()), calls)
        self.assertEqual(self.refund({"amount": 700}).status_code, 200)
        self.assertLedgerMatches(pending_ok=False)

    def test_a_day_old_pending_refund_is_not_retried_against_stripe(self):
        self.stripe.faults.add("POST /v1/refunds", "connection_error", times=3)
        with expect_stripe_unavailable(self):
            self.refund({"amount": 300}, key="old")
        Refund.objects.update(created_at=timezone.now() - timedelta(hours=24))
        response = self.refund({"amount": 300}, key="old")
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json()["error"]["code"], "refund_needs_reconciliation")
        self.assertEqual(len(self.refund_calls()), 3, "only the first request's attempts")

    def test_reconcile_keeps_a_refund_pending_while_stripe_is_down(self):
        self.stripe.faults.add("POST /v1/refunds", "lost_response", times=3)
        with expect_stripe_unavailable(self):
            self.refund({"amount": 300})
        Refund.objects.update(created_at=timezone.now() - timedelta(minutes=10))
        self.stripe.faults.add("GET /v1/refunds", "api_error", times=10)
        out = io.StringIO()
        call_command("reconcile_payments", stdout=out)
        self.assertIn(
            "refunds: settled 0, marked failed 0, left pending after errors 1", out.getvalue()
        )
        self.assertEqual(Refund.objects.get().status, "pending")


class WebhookOrderTests(RefundTestCase):
    def test_a_webhook_during_the_refund_call_is_not_counted_twice(self):
        """Why #4: charge.refunded arrives while the refund call is still in flight."""
        real_create = stripe.Refund.create

        def create_then_webhooks_arrive(*args, **kwargs):
            refund = real_create(*args, **kwargs)
            for event in self.events("charge.refunded", "refund.created"):
                self.assertEqual(self.deliver(event).status_code, 200)
            self.assertEqual(self.payment.amount_refunded, 300)
            return refund

        with mock.patch("stripe.Refund.create", create_then_webhooks_arrive):
            response = self.refund({"amount": 300})
        self.assertEqual(response.json()["amount_refunded"], 300)
        self.assertEqual(Refund.objects.count(), 1, "the webhook found the row, made no other")
        self.assertLedgerMatches(pending_ok=False)

    def test_charge_refunded_events_in_reverse_order_never_move_the_ledger_back(self):
        """Why #5: two charge.refunded webhooks delivered newest first."""
        charge_id = self.payment.stripe_charge_id
        stripe.Refund.create(charge=charge_id, amount=300)  # both in the Dashboard
        stripe.Refund.create(charge=charge_id, amount=700)
        older, newer = self.events("charge.refunded")
        self.deliver(newer)
        self.assertEqual((self.payment.amount_refunded, self.payment.status), (1000, "refunded"))
        self.deliver(older)
        self.assertEqual((self.payment.amount_refunded, self.payment.status), (1000, "refunded"))
        self.assertEqual(Refund.objects.filter(requested_by=None).count(), 2)
        self.assertLedgerMatches(pending_ok=False)
        self.assertEqual(self.deliver(newer).json()["duplicate"], True)

    def test_a_charge_sent_without_its_refunds_is_fetched_from_stripe(self):
        """At API versions since 2022-11-15 a charge's `refunds` is only there when expanded."""
        charge_id = self.payment.stripe_charge_id
        stripe.Refund.create(charge=charge_id, amount=300)
        stripe.Refund.create(charge=charge_id, amount=200)
        events = self.events("charge.refunded")
        for event in events:
            del event["data"]["object"]["refunds"]
        gets = len(
            [r for r in self.stripe.requests if r[:2] == ("GET", f"/v1/charges/{charge_id}")]
        )
        for event in reversed(events):
            self.assertEqual(self.deliver(event).status_code, 200)
        fetched = [r for r in self.stripe.requests if r[:2] == ("GET", f"/v1/charges/{charge_id}")]
        self.assertEqual(len(fetched) - gets, 2)
        self.assertEqual((self.payment.amount_refunded, self.payment.refund_version), (500, 4))
        self.assertLedgerMatches(pending_ok=False)

    def test_refund_events_alone_set_the_figures_from_stripe(self):
        charge_id = self.payment.stripe_charge_id
        stripe.Refund.create(charge=charge_id, amount=250)
        for event in reversed(self.events("refund.created")):
            self.deliver(event)
        self.assertEqual(self.payment.amount_refunded, 250)
        self.assertLedgerMatches(pending_ok=False)

    def test_a_webhook_that_cannot_be_confirmed_is_503_and_applied_on_redelivery(self):
        stripe.Refund.create(charge=self.payment.stripe_charge_id, amount=250)
        [event] = self.events("refund.created")
        self.stripe.faults.add("GET /v1/charges/*", "api_error", times=3)
        with self.assertLogs("payments.events", "WARNING"), self.assertLogs("django.request"):
            response = self.deliver(event)
        self.assertEqual(response.status_code, 503)
        self.assertFalse(StripeEvent.objects.exists(), "not recorded: Stripe will deliver again")
        self.assertEqual(self.deliver(event).json(), {"received": True, "duplicate": False})
        self.assertEqual(self.payment.amount_refunded, 250)
        self.assertLedgerMatches(pending_ok=False)


class AsynchronousRefundTests(RefundTestCase):
    number = "4000000000005126"  # refunds fail asynchronously (docs.stripe.com/testing#refunds)

    def test_a_refund_that_fails_later_is_reflected_whatever_the_event_order(self):
        response = self.refund({"amount": 1000})
        self.assertEqual(
            (response.json()["status"], response.json()["refund"]["status"]),
            ("refunded", "succeeded"),
        )
        mark = len(self.stripe.events)
        self.stripe.settle_refunds()
        later = self.stripe.events[mark:]
        self.assertEqual(
            [e["type"] for e in later], ["refund.updated", "charge.refund.updated", "refund.failed"]
        )
        with self.assertRaisesMessage(
            AssertionError, "status  ledger='succeeded'  stripe='failed'"
        ):
            self.assertLedgerMatches()
        for event in reversed([*self.events("refund.created", "charge.refunded"), *later]):
            self.assertEqual(self.deliver(event).status_code, 200)
        row = Refund.objects.get()
        self.assertEqual((row.status, row.failure_reason), ("failed", "expired_or_canceled_card"))
        self.assertEqual((self.payment.status, self.payment.amount_refunded), ("succeeded", 0))
        self.assertLedgerMatches(pending_ok=False)
        # The money is back: it can be refunded again.
        self.assertEqual(self.refund({"amount": 500}).status_code, 200)


class PendingRefundTests(RefundTestCase):
    number = "4000000000007726"  # refunds stay pending until Stripe settles them

    def test_a_pending_refund_counts_and_reconcile_settles_it(self):
        response = self.refund({"amount": 600})
        self.assertEqual(response.json()["refund"]["status"], "pending")
        self.assertEqual(self.refund({"amount": 500}).json()["error"]["code"], "amount_too_large")
        self.assertLedgerMatches()
        self.stripe.settle_refunds()
        Refund.objects.update(created_at=timezone.now() - timedelta(minutes=10))
        call_command("reconcile_payments", stdout=io.StringIO())
        self.assertEqual(Refund.objects.get().status, "succeeded")
        self.assertLedgerMatches(pending_ok=False)


class ReplaysAreNotThrottledTests(RefundTestCase):
    @override_settings(PAYMENTS_THROTTLE="3/hour")
    def test_a_payment_replay_is_always_answered(self):
        # setUp paid once: this is the second attempt of three.
        first = self.pay(card("4242424242424242", 500), key="p-1")
        for _ in range(5):
            replay = self.pay(card("4242424242424242", 500), key="p-1")
            self.assertEqual(replay.json(), first.json())
        self.pay(card("4242424242424242", 600), key="p-2")
        response = self.client.post(
            reverse("payments"), card("4242424242424242", 700), format="json"
        )
        self.assertEqual(response.status_code, 429, "new attempts are still capped")

    @override_settings(PAYMENTS_THROTTLE="2/hour")
    def test_a_refund_replay_is_always_answered(self):
        first = self.refund({"amount": 100}, key="r-1")
        for _ in range(5):
            self.assertEqual(self.refund({"amount": 100}, key="r-1").json(), first.json())
        self.assertEqual(self.refund({"amount": 100}, key="r-2").status_code, 200)
        self.assertEqual(self.refund({"amount": 100}, key="r-3").status_code, 429)
        self.assertEqual(len(self.stripe.all("refund")), 2)


class RefundOverHTTPTests(LedgerAssertionsMixin, APITestCase):
    """The server layer: the real stripe client over HTTP to the fake on 127.0.0.1."""

    def test_a_refund_lost_over_http_is_retried_and_counted_once(self):
        from fakes.server import FakeServer
        from payments.testing import FakeStripe, stripe_server

        engine = FakeStripe()
        server = FakeServer({"/stripe": engine}).start()
        self.addCleanup(server.stop)
        owner = User.objects.create_user("owner")
        staff = User.objects.create_user("staff", is_staff=True)
        with stripe_server(server.url + "/stripe"):
            self.client.force_authenticate(owner)
            payment = self.client.post(reverse("payments"), card("4242424242424242"), format="json")
            url = reverse("payment-refund", args=[payment.json()["id"]])
            self.client.force_authenticate(staff)
            engine.faults.add("POST /v1/refunds", "lost_response")  # max_network_retries=0
            with expect_stripe_unavailable(self):
                lost = self.client.post(
                    url, {"amount": 300}, format="json", HTTP_IDEMPOTENCY_KEY="h"
                )
            retry = self.client.post(url, {"amount": 300}, format="json", HTTP_IDEMPOTENCY_KEY="h")
        self.assertEqual((lost.status_code, retry.status_code), (503, 200))
        self.assertEqual(retry.json()["amount_refunded"], 300)
        self.assertEqual(len(engine.all("refund")), 1)
        self.assertLedgerMatches(engine, pending_ok=False)


class RefundAdminTests(RefundTestCase):
    def test_refunds_are_shown_read_only_in_the_admin(self):
        self.refund({"amount": 300})
        root = User.objects.create_superuser("root", password="correct-horse-battery-42")
        self.client.force_login(root)
        page = self.client.get(reverse("admin:payments_payment_change", args=[self.payment_id]))
        self.assertContains(page, Refund.objects.get().stripe_refund_id)
        listing = self.client.get(reverse("admin:payments_refund_changelist"))
        self.assertContains(listing, "succeeded")
        self.assertEqual(self.client.get(reverse("admin:payments_refund_add")).status_code, 403)


class LedgerAssertionTests(RefundTestCase):
    def test_it_names_each_difference(self):
        self.refund({"amount": 300})
        Payment.objects.update(amount_refunded=600)
        Refund.objects.update(status="failed")
        with self.assertRaises(AssertionError) as caught:
            assert_ledger_matches(self.stripe)
        message = str(caught.exception)
        self.assertIn("amount_refunded  ledger=600  stripe=300", message)
        self.assertIn("status  ledger='failed'  stripe='succeeded'", message)

    def test_it_catches_a_double_charge_and_stray_stripe_objects(self):
        payment = self.payment
        stripe.Charge.create(
            amount=1000, currency="usd", source="tok_visa", metadata={"payment_id": payment.pk}
        )
        stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        with self.assertRaises(AssertionError) as caught:
            self.assertLedgerMatches()
        self.assertIn("charged 2 times", str(caught.exception))
        self.assertIn("no Payment row", str(caught.exception))


@unittest.skipIf(
    connection.vendor == "sqlite",
    "SQLite serialises writers; concurrent requests only race on PostgreSQL",
)
class ConcurrentRefundTests(TransactionTestCase):
    """Why #1 with real threads: concurrent refunds are each counted once."""

    def setUp(self):
        self.engine = self.enterContext(fake_stripe())
        owner = User.objects.create_user("owner")
        self.staff = User.objects.create_user("staff", is_staff=True)
        client = APIClient()
        client.force_authenticate(owner)
        body = client.post(reverse("payments"), card("4242424242424242"), format="json").json()
        self.url = reverse("payment-refund", args=[body["id"]])

    def race(self, count, key_of):
        results, barrier = [], threading.Barrier(count)

        def post(number):
            client = APIClient()
            client.force_authenticate(self.staff)
            barrier.wait()
            try:
                response = client.post(
                    self.url, {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY=key_of(number)
                )
                results.append(response.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=post, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(len(results), count)
        return sorted(results)

    def test_ten_concurrent_refunds_with_different_keys(self):
        results = self.race(10, lambda n: f"key-{n}")
        self.assertEqual(results, [200] * 10)
        self.assertEqual(len(self.engine.all("refund")), 10)
        self.assertEqual(Payment.objects.get().amount_refunded, 1000)
        assert_ledger_matches(self.engine, pending_ok=False)

    def test_twelve_concurrent_refunds_never_over_refund(self):
        results = self.race(12, lambda n: f"key-{n}")
        self.assertEqual(results, [200] * 10 + [400] * 2)
        self.assertEqual(len(self.engine.all("refund")), 10)
        assert_ledger_matches(self.engine, pending_ok=False)

    def test_ten_concurrent_refunds_with_one_key(self):
        results = self.race(10, lambda n: "shared")
        self.assertTrue(set(results) <= {200, 409}, results)
        self.assertIn(200, results)
        self.assertEqual(len(self.engine.all("refund")), 1)
        self.assertEqual(Refund.objects.count(), 1)
        assert_ledger_matches(self.engine, pending_ok=False)

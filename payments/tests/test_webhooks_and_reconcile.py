import io
import json
import time
from datetime import timedelta

import stripe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APITestCase

from payments.models import Payment, StripeEvent
from payments.testing import FakeStripeMixin, sign_webhook, signed_webhook
from payments.tests.helpers import expect_stripe_unavailable

User = get_user_model()
SECRET = "whsec_test_secret"


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
class WebhookTests(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("hook")
        self.client.force_authenticate(self.user)

    def deliver(self, event, secret=SECRET, timestamp=None, tamper=False):
        body, header = signed_webhook(event, secret, timestamp)
        if tamper:
            body = body.replace(b'"livemode": false', b'"livemode": true')
        return self.client.generic(
            "POST", reverse("stripe-webhook"), body, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )  # fmt: skip

    def pay(self, data):
        return self.client.post(reverse("payments"), data, format="json")

    def event(self, type):
        return next(e for e in reversed(self.stripe.events) if e["type"] == type)

    def test_3ds_payment_is_settled_by_payment_intent_succeeded(self):
        body = self.pay({"payment_method": "pm_card_threeDSecure2Required", "amount": 900}).json()
        self.stripe.complete_authentication(body["stripe_payment_intent_id"])
        response = self.deliver(self.event("payment_intent.succeeded"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"received": True, "duplicate": False})
        self.assertEqual(Payment.objects.get().status, "succeeded")

    def test_failed_authentication_settles_as_failed(self):
        body = self.pay({"payment_method": "pm_card_authenticationRequired", "amount": 900}).json()
        self.stripe.complete_authentication(body["stripe_payment_intent_id"], succeed=False)
        self.deliver(self.event("payment_intent.payment_failed"))
        payment = Payment.objects.get()
        self.assertEqual(
            (payment.status, payment.failure_code),
            ("failed", "payment_intent_authentication_failure"),
        )

    def test_pending_charge_is_settled_by_charge_succeeded(self):
        payment = Payment.objects.create(
            owner=self.user, amount=500, currency="usd", method="token"
        )
        stripe.Charge.create(
            amount=500, currency="usd", source="tok_visa", metadata={"payment_id": payment.pk}
        )
        self.deliver(self.event("charge.succeeded"))
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.card_last4), ("succeeded", "4242"))

    def test_charge_refunded_updates_the_amount(self):
        body = self.pay({"token": "tok_visa", "amount": 1000}).json()
        stripe.Refund.create(charge=body["stripe_charge_id"], amount=400)
        self.deliver(self.event("charge.refunded"))
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.amount_refunded), ("partially_refunded", 400))

    def test_a_replayed_event_is_acknowledged_not_applied_twice(self):
        body = self.pay({"token": "tok_visa", "amount": 1000}).json()
        stripe.Refund.create(charge=body["stripe_charge_id"], amount=400)
        event = self.event("charge.refunded")
        self.deliver(event)
        Payment.objects.update(amount_refunded=0, status="succeeded")  # would be redone by a replay
        response = self.deliver(event)
        self.assertEqual(response.json(), {"received": True, "duplicate": True})
        self.assertEqual(Payment.objects.get().amount_refunded, 0)
        self.assertEqual(StripeEvent.objects.count(), 1)

    def test_bad_signatures_are_400(self):
        event = {
            "id": "evt_x",
            "object": "event",
            "type": "charge.succeeded",
            "data": {"object": {}},
        }
        cases = {
            "wrong secret": self.deliver(event, secret="whsec_other"),
            "tampered body": self.deliver({**event, "livemode": False}, tamper=True),
            "stale": self.deliver(event, timestamp=time.time() - 3600),
        }
        for name, response in cases.items():
            self.assertEqual(response.status_code, 400, name)
            self.assertEqual(response.json()["error"]["code"], "invalid_signature", name)
        self.assertEqual(StripeEvent.objects.count(), 0)

    def test_missing_signature_and_malformed_body_are_400(self):
        response = self.client.generic(
            "POST", reverse("stripe-webhook"), b"{}", content_type="application/json"
        )
        self.assertEqual(response.status_code, 400)
        body = b"not json"
        response = self.client.generic(
            "POST", reverse("stripe-webhook"), body, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_webhook(body, SECRET),
        )  # fmt: skip
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "invalid_payload")

    def test_unknown_event_types_are_acknowledged(self):
        event = {"id": "evt_unknown", "object": "event", "type": "customer.updated",
                 "data": {"object": {"id": "cus_1", "object": "customer"}}}  # fmt: skip
        response = self.deliver(event)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(json.loads(response.content)["received"], True)

    @override_settings(STRIPE_WEBHOOK_SECRET="")
    def test_unconfigured_secret_is_a_503(self):
        with self.assertLogs("django.request", "ERROR"):
            self.assertEqual(self.deliver({"id": "evt_1"}).status_code, 503)


class ReconcileTests(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("rec")
        self.client.force_authenticate(self.user)

    def pay_while_stripe_fails(self, fault):
        """A payment whose every Stripe attempt hits `fault`, then left for reconciliation."""
        self.stripe.faults.add("POST /v1/charges", fault, times=3)  # outlasts the library's retries
        with expect_stripe_unavailable(self):
            response = self.client.post(
                reverse("payments"), {"token": "tok_visa", "amount": 500}, format="json"
            )
        self.assertEqual(response.status_code, 503)
        self.age_all()

    def age_all(self):
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=10), locked_until=None)

    def run_command(self):
        out = io.StringIO()
        call_command("reconcile_payments", stdout=out)
        return out.getvalue()

    def test_charged_but_answer_lost_is_settled_as_succeeded(self):
        self.pay_while_stripe_fails("lost_response")
        output = self.run_command()
        payment = Payment.objects.get()
        self.assertEqual(payment.status, "succeeded")
        self.assertEqual(payment.stripe_charge_id, self.stripe.charges[0]["id"])
        self.assertIn("settled 1", output)

    def test_never_reached_stripe_is_marked_failed(self):
        self.pay_while_stripe_fails("connection_error")
        self.run_command()
        self.assertEqual(Payment.objects.get().failure_code, "not_charged")

    def test_stripe_still_down_leaves_it_pending(self):
        Payment.objects.create(owner=self.user, amount=500, currency="usd", method="token")
        self.age_all()
        self.stripe.faults.add("GET /v1/charges", "api_error", times=10)
        output = self.run_command()
        self.assertEqual(Payment.objects.get().status, "pending")
        self.assertIn("left pending after errors 1", output)

    def test_recent_payments_are_left_alone(self):
        Payment.objects.create(owner=self.user, amount=500, currency="usd", method="token")
        self.run_command()
        self.assertEqual(Payment.objects.get().status, "pending")
        self.assertEqual(self.stripe.requests, [])

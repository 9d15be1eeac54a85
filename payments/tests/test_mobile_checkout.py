"""Mobile checkout journeys (issue 13), as the app and Stripe's mobile SDK would run them.

Each journey runs twice: on the fake Stripe in process (the stripe library's HTTP client is
the engine) and against `fakeservices` over real HTTP on loopback. The SDK's part (confirm
with the publishable key and the intent's client secret, the 3-D Secure challenge) is
played with the real stripe library; webhooks are signed and posted to the backend's own
endpoint, in reverse order where the journey allows it, to show order does not matter.
Every journey ends with check_ledger(): each Payment row against the fake's own records.
"""

import io
import time
from datetime import timedelta

import stripe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APITestCase

from fakes.server import FakeServer
from payments import customers
from payments.models import Payment, StripeCustomer
from payments.testing import (
    assert_ledger_matches,
    fake_stripe,
    shared_engine,
    stripe_globals,
    stripe_server,
)
from payments.testing.webhooks import post_signed_event

User = get_user_model()
SECRET = "whsec_mobile"
PUBLISHABLE = "pk_test_mobile"
SDK_VERSION = "2020-08-27"  # what an older mobile SDK reports; pinned on its EphemeralKey

STATUS_OF_INTENT = {
    "succeeded": ("succeeded", "refunded", "partially_refunded"),
    "requires_capture": ("requires_capture",),
    "canceled": ("canceled", "failed"),
    "requires_payment_method": ("pending", "failed", "requires_action"),
    "requires_action": ("pending", "requires_action"),
}


MOBILE_SETTINGS = override_settings(
    STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_PUBLISHABLE_KEY=PUBLISHABLE
)


class Journeys:
    """The journeys; subclasses choose the layer (setUp sets self.engine)."""

    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("ada", "ada@example.com")
        self.staff = User.objects.create_user("ops", is_staff=True)
        self.client.force_authenticate(self.user)

    # ------------------------------------------------------------ the app and the SDK
    def post(self, name, data=None, key=None, **kwargs):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        url = reverse(name, kwargs=kwargs or None)
        return self.client.post(url, data or {}, format="json", **headers)

    def as_staff(self, name, data=None, **kwargs):
        self.client.force_authenticate(self.staff)
        try:
            return self.post(name, data, **kwargs)
        finally:
            self.client.force_authenticate(self.user)

    def sdk_confirm(self, client_secret, payment_method, setup=False):
        """PaymentSheet's confirm: publishable key + client secret, straight to Stripe."""
        resource = stripe.SetupIntent if setup else stripe.PaymentIntent
        intent_id = client_secret.split("_secret_")[0]
        return resource.confirm(
            intent_id,
            client_secret=client_secret,
            payment_method=payment_method,
            api_key=PUBLISHABLE,
        )

    def sdk_card(self, number):
        """The SDK turns the card form into a PaymentMethod with the publishable key."""
        card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        return stripe.PaymentMethod.create(type="card", card=card, api_key=PUBLISHABLE).id

    def deliver(self, reverse_order=True):
        """Sign and post every event not yet delivered; returns their types."""
        events = [e for e in self.engine.events if e["id"] not in self.engine.delivered]
        for event in reversed(events) if reverse_order else events:
            response = post_signed_event(self.client, event, SECRET)
            self.assertEqual(response.status_code, 200, response.content)
            self.engine.delivered.add(event["id"])
        return [e["type"] for e in events]

    def saved_cards(self):
        response = self.client.get(reverse("payment-methods"))
        self.assertEqual(response.status_code, 200)
        return response.json()

    # ------------------------------------------------------------ the ledger
    def check_ledger(self):
        """The ledger invariant (every Payment and Refund row equals the fake's records), and
        the checkout's own fields: each payment against its intent and charge."""
        assert_ledger_matches(self.engine)
        for payment in Payment.objects.all():
            intent = self.engine.objects.get(payment.stripe_payment_intent_id)
            charge = self.engine.objects.get(payment.stripe_charge_id)
            if intent is not None:
                self.assertEqual(intent["amount"], payment.amount)
                self.assertEqual(intent["metadata"].get("payment_id"), str(payment.pk))
                self.assertIn(payment.status, STATUS_OF_INTENT[intent["status"]], payment)
                charge = charge or self.engine.objects.get(intent["latest_charge"] or "")
            if charge is not None and payment.status not in ("pending", "failed"):
                self.assertEqual(charge["amount_refunded"], payment.amount_refunded, payment)
                self.assertEqual(charge["payment_method_details"]["card"]["last4"],
                                 payment.card_last4)  # fmt: skip
                if charge["captured"] and not payment.capture:
                    self.assertEqual(charge["amount_captured"], payment.amount_captured)

    # ------------------------------------------------------------ journeys
    def test_sheet_webhook_saved_card_off_session_refund(self):
        response = self.post("payment-sheet", {"amount": 1500, "save_card": True,
                                               "stripe_version": SDK_VERSION}, key="order-7")  # fmt: skip
        self.assertEqual(response.status_code, 201, response.content)
        sheet = response.json()
        self.assertEqual(set(sheet), {"payment", "payment_intent_client_secret", "customer",
                                      "ephemeral_key_secret", "publishable_key"})  # fmt: skip
        self.assertEqual(sheet["publishable_key"], PUBLISHABLE)
        self.assertTrue(sheet["ephemeral_key_secret"].startswith("ek_test_"))
        (key,) = self.engine.all("ephemeral_key")
        self.assertEqual(key["associated_objects"], [{"id": sheet["customer"], "type": "customer"}])
        self.assertEqual(self.engine._ephemeral_versions[key["id"]], SDK_VERSION)
        intent = self.engine.objects[sheet["payment"]["stripe_payment_intent_id"]]
        self.assertEqual((intent["customer"], intent["setup_future_usage"], intent["status"]),
                         (sheet["customer"], "off_session", "requires_payment_method"))  # fmt: skip
        # a retry of the same request reaches the same payment and PaymentIntent
        again = self.post("payment-sheet", {"amount": 1500, "save_card": True,
                                            "stripe_version": SDK_VERSION}, key="order-7").json()  # fmt: skip
        self.assertEqual(again["payment"]["id"], sheet["payment"]["id"])
        self.assertEqual(
            again["payment_intent_client_secret"], sheet["payment_intent_client_secret"]
        )
        self.assertEqual(len(self.engine.all("payment_intent")), 1)

        confirmed = self.sdk_confirm(sheet["payment_intent_client_secret"], "pm_card_visa")
        self.assertEqual(confirmed.status, "succeeded")
        payment = Payment.objects.get()
        self.assertEqual(payment.status, "pending")  # the app's word is not enough
        types = self.deliver()
        self.assertIn("payment_intent.succeeded", types)
        self.assertIn("payment_method.attached", types)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.method, payment.card_brand, payment.card_last4),
                         ("succeeded", "payment_sheet", "visa", "4242"))  # fmt: skip

        (card,) = self.saved_cards()
        self.assertEqual((card["brand"], card["last4"], card["exp_month"]), ("visa", "4242", 12))
        off = self.post("payments", {"payment_method": card["id"], "off_session": True,
                                     "amount": 700})  # fmt: skip
        self.assertEqual(off.status_code, 201, off.content)
        self.assertEqual((off.json()["status"], off.json()["card_last4"]), ("succeeded", "4242"))
        off_intent = self.engine.objects[off.json()["stripe_payment_intent_id"]]
        self.assertEqual(off_intent["customer"], sheet["customer"])

        refund = self.as_staff("payment-refund", {}, pk=off.json()["id"])
        self.assertEqual(refund.json()["status"], "refunded")
        self.deliver()
        self.assertEqual(len(self.engine.all("customer")), 1)
        self.check_ledger()

    def test_a_lost_webhook_is_made_good_by_reconcile(self):
        sheet = self.post("payment-sheet", {"amount": 1100}).json()
        self.sdk_confirm(sheet["payment_intent_client_secret"], "pm_card_amex")
        # the webhooks never arrive; the payment is still pending, then reconciled
        self.assertEqual(Payment.objects.get().status, "pending")
        call_command("reconcile_payments", "--older-than", "0", stdout=io.StringIO())
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.card_brand, payment.card_last4),
                         ("succeeded", "amex", "0005"))  # fmt: skip
        self.deliver()  # late webhooks change nothing
        payment.refresh_from_db()
        self.assertEqual(payment.status, "succeeded")
        self.check_ledger()

    def test_setup_with_3ds_then_off_session_succeeds(self):
        response = self.post("payment-method-setup", key="save-1")
        self.assertEqual(response.status_code, 201, response.content)
        setup = response.json()
        seti = self.sdk_confirm(
            setup["setup_intent_client_secret"], "pm_card_authenticationRequiredOnSetup", setup=True
        )
        self.assertEqual(seti.status, "requires_action")
        self.engine.complete_setup_authentication(seti.id)  # the SDK's 3-D Secure sheet
        self.assertIn("setup_intent.succeeded", self.deliver())
        (card,) = self.saved_cards()
        self.assertEqual(card["last4"], "3155")
        # 4000002500003155: authenticated once at setup, no challenge off-session
        off = self.post("payments", {"payment_method": card["id"], "off_session": True,
                                     "amount": 900})  # fmt: skip
        self.assertEqual(off.status_code, 201, off.content)
        self.assertEqual(off.json()["status"], "succeeded")
        # the same card on a one-time payment, never set up, still needs authentication
        once = self.post("payments", {"payment_method": "pm_card_authenticationRequiredOnSetup",
                                      "amount": 900})  # fmt: skip
        self.assertEqual(once.status_code, 202)
        self.deliver()
        self.check_ledger()

    def test_off_session_authentication_required_then_back_on_session(self):
        setup = self.post("payment-method-setup").json()
        method = self.sdk_card("4000002760003184")  # authenticates on every payment
        seti = self.sdk_confirm(setup["setup_intent_client_secret"], method, setup=True)
        self.engine.complete_setup_authentication(seti.id)
        self.deliver()
        off = self.post("payments", {"payment_method": method, "off_session": True,
                                     "amount": 2500})  # fmt: skip
        self.assertEqual(off.status_code, 400, off.content)
        error = off.json()["error"]
        self.assertEqual((error["type"], error["code"]), ("card_error", "authentication_required"))
        self.assertTrue(error["client_secret"].startswith(error["payment_intent"] + "_secret_"))
        payment = Payment.objects.get(pk=error["payment"])
        self.assertEqual(payment.status, "requires_action")
        self.deliver()  # payment_failed must not end it: the customer can still come back
        payment.refresh_from_db()
        self.assertEqual(payment.status, "requires_action")
        # back in the app: the SDK confirms the same intent on-session and authenticates
        back = self.sdk_confirm(error["client_secret"], method)
        self.assertEqual(back.status, "requires_action")
        self.engine.complete_authentication(back.id)
        self.deliver()
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.card_last4), ("succeeded", "3184"))
        self.check_ledger()

    def test_manual_capture_then_partial_capture(self):
        held = self.post("payments", {"payment_method": "pm_card_visa", "amount": 1000,
                                      "capture": False})  # fmt: skip
        self.assertEqual(held.status_code, 201, held.content)
        self.assertEqual(held.json()["status"], "requires_capture")
        intent = self.engine.objects[held.json()["stripe_payment_intent_id"]]
        self.assertEqual((intent["amount_capturable"], intent["amount_received"]), (1000, 0))
        self.deliver()
        self.assertEqual(self.post("payment-capture", pk=held.json()["id"]).status_code, 403)
        captured = self.as_staff("payment-capture", {"amount": 600}, pk=held.json()["id"])
        self.assertEqual(captured.status_code, 200, captured.content)
        self.assertEqual((captured.json()["status"], captured.json()["amount_refunded"]),
                         ("succeeded", 400))  # fmt: skip
        self.assertEqual((intent["amount_capturable"], intent["amount_received"]), (0, 600))
        self.deliver()
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.amount_captured), ("succeeded", 600))
        again = self.as_staff("payment-capture", pk=payment.pk)
        self.assertEqual(again.json()["error"]["code"], "payment_not_capturable")
        # what is left to refund is what was taken
        refund = self.as_staff("payment-refund", {"amount": 601}, pk=payment.pk)
        self.assertEqual(refund.json()["error"]["code"], "amount_too_large")
        refund = self.as_staff("payment-refund", {}, pk=payment.pk)
        self.assertEqual((refund.json()["status"], refund.json()["amount_refunded"]),
                         ("refunded", 1000))  # fmt: skip
        self.deliver()
        self.check_ledger()

    def test_sheet_hold_canceled_and_expired_holds_released(self):
        sheet = self.post("payment-sheet", {"amount": 800, "capture": False}).json()
        self.sdk_confirm(sheet["payment_intent_client_secret"], "pm_card_mastercard")
        self.deliver()
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.card_brand), ("requires_capture", "mastercard"))
        canceled = self.as_staff("payment-cancel", pk=payment.pk)
        self.assertEqual(canceled.json()["status"], "canceled")
        charge = self.engine.objects[
            self.engine.objects[payment.stripe_payment_intent_id]["latest_charge"]
        ]
        self.assertEqual((charge["refunded"], charge["captured"]), (True, False))
        self.assertIn("charge.refunded", self.deliver())
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.amount_refunded), ("canceled", 800))

        old = self.post("payments", {"payment_method": "pm_card_visa", "amount": 500,
                                     "capture": False}).json()  # fmt: skip
        Payment.objects.filter(pk=old["id"]).update(created_at=timezone.now() - timedelta(days=8))
        call_command("reconcile_payments", stdout=io.StringIO())
        self.assertEqual(Payment.objects.get(pk=old["id"]).status, "canceled")
        self.assertEqual(self.engine.objects[old["stripe_payment_intent_id"]]["status"], "canceled")
        self.deliver()
        self.check_ledger()

    def test_a_hold_stripe_expired_is_recorded_by_reconcile(self):
        held = self.post("payments", {"payment_method": "pm_card_visa", "amount": 650,
                                      "capture": False}).json()  # fmt: skip
        Payment.objects.filter(pk=held["id"]).update(created_at=timezone.now() - timedelta(days=8))
        (expired,) = self.engine.expire_authorizations(now=time.time() + 8 * 86400)
        self.assertEqual((expired["id"], expired["cancellation_reason"]),
                         (held["stripe_payment_intent_id"], "automatic"))  # fmt: skip
        calls = len(self.engine.requests)
        call_command("reconcile_payments", stdout=io.StringIO())
        self.assertEqual(Payment.objects.get(pk=held["id"]).status, "canceled")
        cancels = [p for _, p, _ in self.engine.requests[calls:] if p.endswith("/cancel")]
        self.assertEqual(cancels, [])  # Stripe had released it: only read, not canceled again
        self.deliver()
        # without reconcile, Stripe's payment_intent.canceled webhook records it too
        other = self.post("payments", {"payment_method": "pm_card_visa", "amount": 650,
                                       "capture": False}).json()  # fmt: skip
        self.engine.expire_authorizations(now=time.time() + 8 * 86400)
        self.assertIn("payment_intent.canceled", self.deliver())
        self.assertEqual(Payment.objects.get(pk=other["id"]).status, "canceled")
        self.check_ledger()

    def test_detach_only_your_own_card(self):
        setup = self.post("payment-method-setup").json()
        self.sdk_confirm(setup["setup_intent_client_secret"], "pm_card_visa", setup=True)
        (card,) = self.saved_cards()
        other = User.objects.create_user("eve")
        self.client.force_authenticate(other)
        self.assertEqual(self.saved_cards(), [])
        gone = self.client.delete(reverse("payment-method-detail", args=[card["id"]]))
        self.assertEqual((gone.status_code, gone.json()["error"]["code"]), (404, "not_found"))
        stolen = self.post("payments", {"payment_method": card["id"], "amount": 500})
        self.assertEqual(stolen.json()["error"]["code"], "payment_method_not_found")
        self.client.force_authenticate(self.user)
        self.assertEqual(
            self.client.delete(reverse("payment-method-detail", args=[card["id"]])).status_code,
            204,
        )
        self.assertEqual(self.saved_cards(), [])
        self.assertIsNone(self.engine.objects[card["id"]]["customer"])
        self.assertIn("payment_method.detached", self.deliver())

    def test_declining_card_cannot_be_saved_but_0341_saves_then_fails(self):
        setup = self.post("payment-method-setup").json()
        with self.assertRaises(stripe.CardError) as caught:
            self.sdk_confirm(setup["setup_intent_client_secret"], "pm_card_visa_chargeDeclined",
                             setup=True)  # fmt: skip
        self.assertEqual(caught.exception.code, "card_declined")
        self.assertEqual(self.saved_cards(), [])
        setup = self.post("payment-method-setup").json()
        self.sdk_confirm(setup["setup_intent_client_secret"], "pm_card_chargeCustomerFail",
                         setup=True)  # fmt: skip
        (card,) = self.saved_cards()
        off = self.post("payments", {"payment_method": card["id"], "off_session": True,
                                     "amount": 500})  # fmt: skip
        self.assertEqual((off.status_code, off.json()["error"]["code"]), (400, "card_declined"))
        self.deliver()
        self.check_ledger()

    def test_one_customer_even_after_a_lost_answer(self):
        self.enterContext(stripe_globals(max_network_retries=0))  # no library retry
        self.engine.faults.add("POST /v1/customers", "lost_response")
        with self.assertLogs("payments.answers", "WARNING"), self.assertLogs("django.request"):
            first = self.post("payment-sheet", {"amount": 500})
        self.assertEqual(first.status_code, 503)
        self.assertEqual(len(self.engine.all("customer")), 1)  # Stripe made it; we never heard
        second = self.post("payment-sheet", {"amount": 500})
        self.assertEqual(second.status_code, 201, second.content)
        (customer,) = self.engine.all("customer")
        self.assertEqual(second.json()["customer"], customer["id"])
        self.assertEqual(StripeCustomer.objects.get(user=self.user).stripe_customer_id,
                         customer["id"])  # fmt: skip
        self.assertEqual(customers.customer_for(self.user), customer["id"])

    def test_a_customer_stripe_no_longer_has_is_forgotten_and_made_again(self):
        """Deleted in the Dashboard, or gone in a sandbox reset: the saved cards are none
        (not a 503 "provider unavailable" for ever), and saving a card or paying makes a
        new Customer, under a new idempotency key (the old one would replay the deleted)."""
        self.assertEqual(self.post("payment-method-setup").status_code, 201)
        old = StripeCustomer.objects.get(user=self.user)
        stripe.Customer.delete(old.stripe_customer_id)
        with self.assertLogs("payments.customers", "WARNING"):
            self.assertEqual(self.saved_cards(), [])
        self.assertEqual(customers.customer_for(self.user, create=False), None)
        setup = self.post("payment-method-setup")
        self.assertEqual(setup.status_code, 201, setup.content)
        (customer,) = [c for c in self.engine.all("customer") if not c.get("deleted")]
        self.assertEqual(setup.json()["customer"], customer["id"])
        self.assertNotEqual(customer["id"], old.stripe_customer_id)
        self.assertNotEqual(StripeCustomer.objects.get(user=self.user).reference, old.reference)

        stripe.Customer.delete(customer["id"])  # and a sheet payment: refused once, then made
        with self.assertLogs("payments.customers", "WARNING"):
            refused = self.post("payment-sheet", {"amount": 500})
        self.assertEqual(refused.status_code, 400, refused.content)
        self.assertEqual(refused.json()["error"]["code"], "resource_missing")
        again = self.post("payment-sheet", {"amount": 500})
        self.assertEqual(again.status_code, 201, again.content)
        self.assertNotIn(again.json()["customer"], (old.stripe_customer_id, customer["id"]))
        self.check_ledger()


@MOBILE_SETTINGS
class InProcessJourneyTests(Journeys, APITestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())
        super().setUp()


@MOBILE_SETTINGS
class OverHTTPJourneyTests(Journeys, APITestCase):
    """The same journeys against `fakeservices` (shared engine) over loopback HTTP."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = FakeServer({"/stripe": shared_engine}).start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        self.engine = shared_engine
        self.engine.reset()
        self.enterContext(stripe_server(self.server.url + "/stripe"))
        super().setUp()

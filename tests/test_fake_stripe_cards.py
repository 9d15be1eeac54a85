"""The remaining published test cards and tokens, and Stripe behaviours of the modelled
resources (issue 12), through the real stripe library; card tables at all three layers."""

import base64
import pickle
from unittest import mock

import requests
import stripe
from django.test import SimpleTestCase

from backend.fakeservices import start_fake_services
from payments.testing import (
    FakeStripe,
    MockCharge,
    MockPaymentIntent,
    MockPaymentMethod,
    MockToken,
    fake_stripe,
    stripe_server,
)
from tests.test_fake_stripe_fidelity import charge_pair

AUTH = {"Authorization": "Bearer sk_test_cards"}
CARD = {"exp_month": 12, "exp_year": 2035, "cvc": "123"}

# docs.stripe.com/testing: outcomes of a Token + Charge (the Charges API cannot run a
# 3-D Secure challenge, so cards that require one decline with authentication_required).
AUTH_REQUIRED = ("CardError", "card_declined", "authentication_required")
CHARGES = {
    "4000000000000077": ("succeeded", "succeeded", "0077"),  # bypass pending balance
    "4000002760003184": AUTH_REQUIRED,  # always authenticate
    "4000000000003063": AUTH_REQUIRED,  # 3DS required
    "4000008260003178": AUTH_REQUIRED,  # 3DS required, then insufficient funds
    "4000000000003055": ("succeeded", "succeeded", "3055"),  # 3DS supported, not required
    "4000002500003155": AUTH_REQUIRED,  # authenticate unless set up
}
# On the PaymentIntents path: (status after confirm, status after the customer passes the
# challenge, decline code after it).
INTENTS = {
    "4000000000000077": ("succeeded", None, None),
    "4000002760003184": ("requires_action", "succeeded", None),
    "4000000000003063": ("requires_action", "succeeded", None),
    "4000008260003178": ("requires_action", "requires_payment_method", "insufficient_funds"),
    "4000000000003055": ("succeeded", None, None),
    "4000002500003155": ("requires_action", "succeeded", None),
}


def intent_outcome(number, engine):
    method = stripe.PaymentMethod.create(type="card", card={"number": number, **CARD})
    intent = stripe.PaymentIntent.create(
        amount=1500, currency="usd", payment_method=method.id, confirm=True
    )
    if intent.status != "requires_action":
        return (intent.status, None, None)
    engine.complete_authentication(intent.id)
    after = stripe.PaymentIntent.retrieve(intent.id)
    error = after.last_payment_error
    return (intent.status, after.status, error.decline_code if error else None)


class PublishedCardsAtThreeLayersTests(SimpleTestCase):
    def run_layers(self, outcome_of):
        results = []
        engine = FakeStripe()
        with fake_stripe(engine):
            results.append({n: outcome_of(n, engine) for n in CHARGES})
        with (
            fake_stripe(engine),
            mock.patch("stripe.Token", MockToken),
            mock.patch("stripe.Charge", MockCharge),
            mock.patch("stripe.PaymentMethod", MockPaymentMethod),
            mock.patch("stripe.PaymentIntent", MockPaymentIntent),
        ):
            results.append({n: outcome_of(n, engine) for n in CHARGES})
        served = FakeStripe()
        server = start_fake_services({"/stripe": served})
        self.addCleanup(server.stop)
        with stripe_server(server.url + "/stripe", api_key="sk_test_server"):
            results.append({n: outcome_of(n, served) for n in CHARGES})
        return results

    def test_charges_path(self):
        for layer in self.run_layers(lambda number, engine: charge_pair(number)):
            self.assertEqual(layer, CHARGES)

    def test_payment_intents_path(self):
        for layer in self.run_layers(intent_outcome):
            self.assertEqual(layer, INTENTS)


class TokensAndBehaviourTests(SimpleTestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())

    def charge(self, source="tok_visa", **params):
        return stripe.Charge.create(amount=1000, currency="usd", source=source, **params)

    def test_off_session_one_off_needs_authentication_it_cannot_get(self):
        # off_session is declared bool | "one_off" | "recurring"; a card that needs 3-D Secure
        # declines off session with authentication_required (docs.stripe.com/testing).
        with self.assertRaises(stripe.CardError) as caught:
            stripe.PaymentIntent.create(
                amount=1000, currency="usd", payment_method="pm_card_authenticationRequired",
                confirm=True, off_session="one_off",
            )  # fmt: skip
        self.assertEqual(caught.exception.error.decline_code, "authentication_required")

    def test_magic_tokens(self):
        prepaid = self.charge("tok_mastercard_prepaid").payment_method_details.card
        self.assertEqual(
            (prepaid.brand, prepaid.funding, prepaid.last4), ("mastercard", "prepaid", "5100")
        )
        risky = self.charge("tok_riskLevelElevated")
        self.assertEqual((risky.status, risky.outcome.risk_level), ("succeeded", "elevated"))
        disputed = self.charge("tok_createDispute")
        self.assertEqual(disputed.status, "succeeded")  # succeeds, then disputed as fraudulent
        self.assertTrue(stripe.Charge.retrieve(disputed.id).disputed)
        event = self.engine.events[-1]
        self.assertEqual(event["type"], "charge.dispute.created")
        self.assertEqual((event["data"]["object"]["charge"], event["data"]["object"]["reason"]),
                         (disputed.id, "fraudulent"))  # fmt: skip

    def test_decline_codes_on_expired_cvc_and_processing_errors(self):
        for token, code in (
            ("tok_chargeDeclinedExpiredCard", "expired_card"),
            ("tok_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
            ("tok_chargeDeclinedProcessingError", "processing_error"),
        ):
            with self.assertRaises(stripe.CardError) as caught:
                self.charge(token)
            body = caught.exception.json_body["error"]
            self.assertEqual((body["code"], body["decline_code"]), (code, code))

    def test_basic_auth_with_the_secret_key_as_user_name(self):
        basic = base64.b64encode(b"sk_test_curl:").decode()
        answer = self.engine.handle(
            "GET", "/v1/charges", "", b"", {"Authorization": f"Basic {basic}"}
        )
        self.assertEqual(answer.status, 200)
        wrong = base64.b64encode(b"not_a_key:").decode()
        answer = self.engine.handle(
            "GET", "/v1/charges", "", b"", {"Authorization": f"Basic {wrong}"}
        )
        self.assertEqual(answer.status, 401)
        server = start_fake_services({"/stripe": FakeStripe()})
        self.addCleanup(server.stop)
        response = requests.get(
            server.url + "/stripe/v1/balance", auth=("sk_test_curl", ""), timeout=5
        )
        self.assertEqual((response.status_code, response.json()["object"]), (200, "balance"))

    def test_a_replay_names_the_original_request(self):
        first = self.charge(idempotency_key="order-9")
        replay = self.charge(idempotency_key="order-9")
        headers = replay.last_response.headers
        self.assertEqual(headers["Idempotent-Replayed"], "true")
        self.assertEqual(headers["Original-Request"], first.last_response.request_id)
        self.assertNotEqual(replay.last_response.request_id, first.last_response.request_id)

    def test_authorisation_capture_and_void(self):
        held = self.charge(capture=False)
        self.assertIsNone(held.balance_transaction)  # an authorisation moves no money
        captured = stripe.Charge.capture(held.id, amount=600)
        self.assertEqual((captured.amount_captured, captured.amount_refunded, captured.refunded),
                         (600, 400, False))  # fmt: skip
        self.assertTrue(captured.balance_transaction.startswith("txn_"))
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Refund.create(charge=held.id, amount=601)
        self.assertEqual(caught.exception.code, "amount_too_large")
        self.assertTrue(stripe.Refund.create(charge=held.id).amount == 600)
        self.assertTrue(stripe.Charge.retrieve(held.id).refunded)

        other = self.charge(capture=False)
        void = stripe.Refund.create(charge=other.id)
        self.assertEqual(
            (void.amount, void.status, void.balance_transaction), (1000, "succeeded", None)
        )
        after = stripe.Charge.retrieve(other.id)
        self.assertEqual(
            (after.captured, after.refunded, after.amount_refunded), (False, True, 1000)
        )

    def test_a_customer_with_a_declining_source_is_refused(self):
        with self.assertRaises(stripe.CardError) as caught:
            stripe.Customer.create(email="a@example.com", source="tok_chargeDeclined")
        self.assertEqual(caught.exception.code, "card_declined")
        self.assertEqual(self.engine.all("customer"), [])
        # "Attaching this card to a Customer object succeeds, but attempts to charge fail"
        customer = stripe.Customer.create(source="tok_chargeCustomerFail")
        self.assertTrue(customer.default_source.startswith("card_"))

    def test_refund_test_cards_settle_later(self):
        failing = self.charge("tok_refundFail")
        refund = stripe.Refund.create(charge=failing.id)
        self.assertEqual(refund.status, "succeeded")  # starts succeeded, fails later
        pending = self.charge("tok_visa")
        method = stripe.PaymentMethod.create(
            type="card", card={"number": "4000000000007726", **CARD}
        )
        intent = stripe.PaymentIntent.create(
            amount=800, currency="usd", payment_method=method.id, confirm=True
        )
        late = stripe.Refund.create(payment_intent=intent.id)
        self.assertEqual(late.status, "pending")
        self.assertEqual(stripe.Charge.retrieve(intent.latest_charge).amount_refunded, 800)
        settled = self.engine.settle_refunds()
        self.assertEqual(
            {r["id"]: r["status"] for r in settled}, {refund.id: "failed", late.id: "succeeded"}
        )
        self.assertEqual(stripe.Refund.retrieve(refund.id).status, "failed")
        after = stripe.Charge.retrieve(failing.id)
        self.assertEqual((after.amount_refunded, after.refunded), (0, False))  # money back
        types = [e["type"] for e in self.engine.events]
        self.assertIn("refund.failed", types)
        self.assertEqual(types.count("charge.refund.updated"), 2)
        self.assertEqual(self.engine.settle_refunds(), [])  # once
        listed = stripe.Refund.list(charge=failing.id)
        self.assertEqual([r.id for r in listed.data], [refund.id])
        self.assertEqual(len(stripe.Refund.list().data), 2)
        self.assertEqual(pending.status, "succeeded")


class StateRoundTripTests(SimpleTestCase):
    def test_dump_state_pickles_and_load_state_restores_it_in_another_engine(self):
        first = FakeStripe()
        with fake_stripe(first):
            charge = stripe.Charge.create(
                amount=900, currency="usd", source="tok_visa", idempotency_key="k"
            )
            product = stripe.Product.create(name="Tea")
            first.faults.add("POST /v1/charges", "api_error")
        state = pickle.loads(pickle.dumps(first.dump_state()))
        second = FakeStripe()
        second.load_state(state)
        self.assertEqual(len(second.faults), 0)  # fault plans are not state
        with fake_stripe(second) as engine:
            engine.load_state(state)  # fake_stripe() resets; load again inside
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount, 900)
            self.assertEqual(stripe.Product.retrieve(product.id).name, "Tea")
            self.assertEqual([c.id for c in stripe.Charge.list().data], [charge.id])
            replay = stripe.Charge.create(
                amount=900, currency="usd", source="tok_visa", idempotency_key="k"
            )
            self.assertEqual(replay.id, charge.id)
            self.assertEqual(engine.events[0]["type"], "charge.succeeded")
            again = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            self.assertNotEqual(again.id, charge.id)
        self.assertEqual(len(first.charges), 1)  # the original engine is untouched

"""Error objects field for field, the test-card aliases of Stripe's table, deleted objects.

docs.stripe.com/api/errors (code, decline_code, param, payment_intent, payment_method,
doc_url), docs.stripe.com/testing (the cards and their pm_card_* / tok_* names),
docs.stripe.com/api/customers/retrieve (a deleted customer). Each check runs in process and
over loopback HTTP.
"""

import stripe
from django.test import SimpleTestCase

from fakes.stripe import cards
from tests.stripe_layers import TwoLayersMixin


class OffSessionAuthenticationTests(TwoLayersMixin, SimpleTestCase):
    def test_off_session_needing_authentication_is_code_authentication_required(self):
        # docs.stripe.com/payments/save-and-reuse branches on err.code ===
        # 'authentication_required'; the error carries the intent and the payment method.
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                method = layer.ok("POST", "/v1/payment_methods/pm_card_authenticationRequired/attach",
                                  {"customer": customer["id"]})  # fmt: skip
                answer = layer.call("POST", "/v1/payment_intents", {
                    "amount": 900, "currency": "usd", "customer": customer["id"],
                    "payment_method": method["id"], "confirm": "true", "off_session": "true"})  # fmt: skip
                self.assertEqual(answer.status, 402, answer.text)
                error = answer.error
                self.assertEqual(
                    {k: error[k] for k in ("type", "code", "decline_code", "doc_url")},
                    {"type": "card_error", "code": "authentication_required",
                     "decline_code": "authentication_required",
                     "doc_url": "https://stripe.com/docs/error-codes/authentication-required"},
                )  # fmt: skip
                self.assertNotIn("param", error)
                self.assertEqual(error["payment_intent"]["object"], "payment_intent")
                self.assertEqual(error["payment_intent"]["status"], "requires_payment_method")
                self.assertEqual(error["payment_method"]["id"], method["id"])
                self.assertEqual(
                    error["payment_intent"]["last_payment_error"]["code"], "authentication_required"
                )
                with layer.library():
                    with self.assertRaises(stripe.CardError) as caught:
                        stripe.PaymentIntent.create(
                            amount=900, currency="usd", customer=customer["id"],
                            payment_method=method["id"], confirm=True, off_session=True,
                        )  # fmt: skip
                    self.assertEqual(caught.exception.code, "authentication_required")

    def test_a_decline_names_its_param_when_stripe_does(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                answer = layer.call("POST", "/v1/payment_intents", {
                    "amount": 900, "currency": "usd", "confirm": "true",
                    "payment_method": "pm_card_visa_chargeDeclinedExpiredCard"})  # fmt: skip
                error = answer.error
                self.assertEqual((error["code"], error["decline_code"], error["param"]),
                                 ("expired_card", "expired_card", "exp_month"))  # fmt: skip
                self.assertEqual(error["payment_method"]["object"], "payment_method")
                charge = layer.call("POST", "/v1/charges", {
                    "amount": 900, "currency": "usd", "source": "tok_chargeDeclined"}).error  # fmt: skip
                self.assertEqual((charge["code"], charge["decline_code"]),
                                 ("card_declined", "generic_decline"))  # fmt: skip
                self.assertTrue(charge["charge"].startswith("ch_"))
                self.assertEqual(
                    charge["doc_url"], "https://stripe.com/docs/error-codes/card-declined"
                )


class TestCardAliasTests(TwoLayersMixin, SimpleTestCase):
    def test_the_aliases_are_stripes(self):
        # docs.stripe.com/testing#authentication-and-setup
        self.assertEqual(
            cards.PAYMENT_METHODS["pm_card_authenticationRequired"], "4000002760003184"
        )
        self.assertEqual(
            cards.PAYMENT_METHODS["pm_card_authenticationRequiredOnSetup"], "4000002500003155"
        )
        self.assertEqual(
            cards.PAYMENT_METHODS["pm_card_authenticationRequiredSetupForOffSession"],
            "4000003800000446",
        )
        for name, number in {**cards.TOKENS, **cards.PAYMENT_METHODS}.items():
            self.assertIn(number, cards.CARDS, name)

    def test_setup_for_off_session_needs_3ds_on_session_only(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                name = "pm_card_authenticationRequiredSetupForOffSession"
                on = layer.ok("POST", "/v1/payment_intents", {"amount": 900, "currency": "usd",
                              "payment_method": name, "confirm": "true"})  # fmt: skip
                self.assertEqual(on["status"], "requires_action")
                off = layer.ok("POST", "/v1/payment_intents", {"amount": 900, "currency": "usd",
                               "payment_method": name, "confirm": "true", "off_session": "true"})  # fmt: skip
                self.assertEqual(off["status"], "succeeded")
                method = layer.ok("GET", "/v1/payment_methods/pm_card_authenticationRequired")
                self.assertEqual(method["card"]["last4"], "3184")

    def test_dispute_cards(self):
        # docs.stripe.com/testing#disputes: 1976 disputed as an inquiry, 2685 as product not
        # received
        for layer in self.layers():
            with self.subTest(layer.name):
                for token, reason, status in [
                    ("tok_createDisputeInquiry", "general", "warning_needs_response"),
                    (
                        "tok_createDisputeProductNotReceived",
                        "product_not_received",
                        "needs_response",
                    ),
                ]:
                    charge = layer.ok("POST", "/v1/charges", {"amount": 900, "currency": "usd",
                                                              "source": token})  # fmt: skip
                    (dispute,) = [d for d in layer.engine.all("dispute")
                                  if d["charge"] == charge["id"]]  # fmt: skip
                    self.assertEqual((dispute["reason"], dispute["status"]), (reason, status))
                blocked = layer.call("POST", "/v1/charges", {"amount": 900, "currency": "usd",
                                                             "source": "tok_riskLevelHighest"})  # fmt: skip
                self.assertEqual(blocked.error["decline_code"], "fraudulent")


class DeletedObjectTests(TwoLayersMixin, SimpleTestCase):
    def test_a_deleted_customer_is_retrieved_as_stripe_answers_it(self):
        # "If it's for a deleted Customer, a subset of the customer's information is
        # returned, including a deleted property that's set to true"
        # (docs.stripe.com/api/customers/retrieve)
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {"email": "a@example.com"})
                path = f"/v1/customers/{customer['id']}"
                deleted = layer.ok("DELETE", path)
                expected = {"id": customer["id"], "object": "customer", "deleted": True}
                self.assertEqual(deleted, expected)
                self.assertEqual(layer.ok("GET", path), expected)
                self.assertEqual(layer.ok("GET", "/v1/customers")["data"], [])
                for method, where, params, status in [
                    ("POST", path, {"email": "b@example.com"}, 404),
                    ("DELETE", path, {}, 404),
                    ("POST", "/v1/payment_intents",  # named by a parameter: 400
                     {"amount": 500, "currency": "usd", "customer": customer["id"]}, 400),
                ]:  # fmt: skip
                    answer = layer.call(method, where, params)
                    self.assertEqual(
                        (answer.status, answer.error["code"]), (status, "resource_missing")
                    )
                with layer.library():
                    self.assertTrue(stripe.Customer.retrieve(customer["id"]).deleted)

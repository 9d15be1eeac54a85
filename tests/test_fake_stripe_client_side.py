"""Client-side calls as Stripe.js and the mobile SDKs make them, and the keys' small print.

docs.stripe.com/keys: a publishable key can create tokens and PaymentMethods and retrieve
or confirm an intent with its client secret; anything else needs a secret key
(docs.stripe.com/error-codes#secret-key-required). Each check runs in process
(fake_stripe()) and over loopback HTTP (start_fake_services), and the client-library layer
(MockToken & co) where it has the call.
"""

import stripe
from django.test import SimpleTestCase

from payments.testing import MockPaymentIntent, MockToken, fake_stripe
from tests.stripe_layers import PUBLISHABLE, TwoLayersMixin

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}


class PublishableKeyTests(TwoLayersMixin, SimpleTestCase):
    def test_stripe_js_sends_the_key_in_the_body_with_no_authorization_header(self):
        # Stripe.js: POST /v1/tokens with card[...]&key=pk_test_...&payment_user_agent=...
        for layer in self.layers():
            with self.subTest(layer.name):
                form = {"card": CARD, "key": PUBLISHABLE, "payment_user_agent": "stripe.js/x",
                        "time_on_page": "1234", "guid": "g", "muid": "m", "sid": "s"}  # fmt: skip
                answer = layer.call("POST", "/v1/tokens", form, key=None)
                self.assertEqual(answer.status, 200, answer.text)
                self.assertEqual(answer.json["object"], "token")
                method = layer.ok("POST", "/v1/payment_methods",
                                  {"type": "card", "card": CARD, "key": PUBLISHABLE}, key=None)  # fmt: skip
                self.assertEqual(method["object"], "payment_method")

    def test_confirm_and_retrieve_an_intent_with_its_client_secret(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                intent = layer.ok("POST", "/v1/payment_intents", {"amount": 500, "currency": "usd"})
                secret = intent["client_secret"]
                path = f"/v1/payment_intents/{intent['id']}"
                got = layer.ok("GET", path, {"client_secret": secret, "key": PUBLISHABLE}, key=None)
                self.assertEqual(got["id"], intent["id"])
                confirmed = layer.ok(
                    "POST",
                    path + "/confirm",
                    {"client_secret": secret, "payment_method": "pm_card_visa",
                     "key": PUBLISHABLE, "use_stripe_sdk": "true"},
                    key=None,
                )  # fmt: skip
                self.assertEqual(confirmed["status"], "succeeded")
                setup = layer.ok("POST", "/v1/setup_intents", {})
                done = layer.ok(
                    "POST",
                    f"/v1/setup_intents/{setup['id']}/confirm",
                    {"client_secret": setup["client_secret"], "payment_method": "pm_card_visa"},
                    key=PUBLISHABLE,  # the header, as the mobile SDKs send it
                )
                self.assertEqual(done["status"], "succeeded")

    def test_a_wrong_or_missing_client_secret_is_refused(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                intent = layer.ok("POST", "/v1/payment_intents", {"amount": 500, "currency": "usd"})
                path = f"/v1/payment_intents/{intent['id']}/confirm"
                wrong = layer.call("POST", path, {"client_secret": intent["id"] + "_secret_x",
                                                  "payment_method": "pm_card_visa"},
                                   key=PUBLISHABLE)  # fmt: skip
                self.assertEqual(
                    (wrong.status, wrong.error["code"]), (400, "parameter_invalid_string")
                )
                self.assertEqual(wrong.error["param"], "client_secret")
                missing = layer.call("POST", path, {"payment_method": "pm_card_visa"},
                                     key=PUBLISHABLE)  # fmt: skip
                self.assertEqual(missing.error["code"], "parameter_missing")

    def test_a_publishable_key_elsewhere_is_secret_key_required(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                for method, path, params in [
                    (
                        "POST",
                        "/v1/charges",
                        {"amount": 500, "currency": "usd", "source": "tok_visa"},
                    ),
                    ("GET", "/v1/customers", {}),
                    ("POST", "/v1/payment_intents", {"amount": 500, "currency": "usd"}),
                ]:
                    body = {**params, "key": PUBLISHABLE}
                    for answer in (layer.call(method, path, params, key=PUBLISHABLE),
                                   layer.call(method, path, body, key=None)):  # fmt: skip
                        self.assertEqual(answer.status, 401, answer.text)
                        self.assertEqual(answer.error["code"], "secret_key_required")
                        self.assertEqual(
                            answer.error["doc_url"],
                            "https://stripe.com/docs/error-codes/secret-key-required",
                        )
                self.assertEqual(layer.engine.all("charge"), [])

    def test_the_library_layers_agree(self):
        for layer in self.layers():
            with self.subTest(layer.name), layer.library(api_key=PUBLISHABLE):
                self.assertEqual(stripe.Token.create(card=CARD).object, "token")
                with self.assertRaises(stripe.AuthenticationError) as caught:
                    stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
                self.assertEqual(caught.exception.error.code, "secret_key_required")
        with fake_stripe():  # the client-library layer (MockToken & co)
            self.assertEqual(MockToken.create(api_key=PUBLISHABLE, card=CARD).object, "token")
            with self.assertRaises(stripe.AuthenticationError) as caught:
                MockPaymentIntent.create(api_key=PUBLISHABLE, amount=500, currency="usd")
            self.assertEqual(caught.exception.error.code, "secret_key_required")


class HostileSecretsTests(TwoLayersMixin, SimpleTestCase):
    """A client_secret or a Bearer key outside ASCII once raised TypeError in
    hmac.compare_digest (a 500); Stripe answers 400 / 401."""

    def test_a_non_ascii_client_secret_is_a_400(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                intent = layer.ok("POST", "/v1/payment_intents", {"amount": 500, "currency": "usd"})
                for key in (PUBLISHABLE, "sk_test_layers"):
                    answer = layer.call(
                        "POST",
                        f"/v1/payment_intents/{intent['id']}/confirm",
                        {"client_secret": intent["client_secret"] + "é",
                         "payment_method": "pm_card_visa"},
                        key=key,
                    )  # fmt: skip
                    self.assertEqual(answer.status, 400, answer.text)
                    self.assertEqual(answer.error["param"], "client_secret")

    def test_a_non_ascii_ephemeral_key_is_a_401(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                answer = layer.call(
                    "GET",
                    f"/v1/customers/{customer['id']}/payment_methods",
                    headers={"Authorization": "Bearer ek_test_\u00e9\u00e9"},
                    key=None,
                )
                self.assertEqual(answer.status, 401, answer.text)
                self.assertEqual(answer.error["code"], "api_key_invalid")
        # the engine's own look-up survives it too (the sandbox's auth calls it directly)
        self.assertIsNone(layer.engine.ephemeral_key_customer("ek_test_\u00e9"))


class SmallOnesTests(TwoLayersMixin, SimpleTestCase):
    def test_a_15_digit_visa_number_is_incorrect_number(self):
        # 424242424242424 passes Luhn but no Visa has 15 digits: Stripe answers
        # incorrect_number (docs.stripe.com/error-codes#incorrect-number), not a live card.
        for layer in self.layers():
            with self.subTest(layer.name):
                answer = layer.call(
                    "POST", "/v1/tokens", {"card": {**CARD, "number": "424242424242424"}}
                )
                self.assertEqual(answer.status, 402, answer.text)
                self.assertEqual(
                    (answer.error["type"], answer.error["code"], answer.error["param"]),
                    ("card_error", "incorrect_number", "number"),
                )
                # the published 15-digit Amex test card still tokenises
                layer.ok("POST", "/v1/tokens", {"card": {**CARD, "number": "378282246310005"}})

    def test_an_invalid_key_is_masked_never_echoed(self):
        cases = {
            "pk_wrong": "pk_*****",
            "sk_test_abcdefghijklmnop!": "sk_test_*************mnop!"[:8] + "*" * 13 + "nop!",
            "garbage": "*******",
        }
        for layer in self.layers():
            with self.subTest(layer.name):
                for key, masked in cases.items():
                    answer = layer.call("GET", "/v1/charges", key=key)
                    self.assertEqual(answer.status, 401)
                    self.assertEqual(answer.error["code"], "api_key_invalid")
                    self.assertEqual(answer.error["message"], f"Invalid API Key provided: {masked}")
                    if len(key) > 4:
                        self.assertNotIn(key, answer.text)


class BrowserCardDataTests(TwoLayersMixin, SimpleTestCase):
    def test_stripe_js_confirms_with_the_card_itself(self):
        # payment_method_data[card][...] with the publishable key: Stripe creates the
        # PaymentMethod (docs.stripe.com/api/setup_intents/confirm#confirm_setup_intent-payment_method_data);
        # a secret key cannot send raw card data there (stripe-python declares none)
        for layer in self.layers():
            with self.subTest(layer.name):
                setup = layer.ok("POST", "/v1/setup_intents", {})
                card = {"number": "4242424242424242", "cvc": "242", "exp_month": "4",
                        "exp_year": "2040"}  # fmt: skip
                done = layer.ok("POST", f"/v1/setup_intents/{setup['id']}/confirm", {
                    "key": PUBLISHABLE, "client_secret": setup["client_secret"],
                    "payment_method_data": {"type": "card", "card": card}}, key=None)  # fmt: skip
                self.assertEqual(done["status"], "succeeded")
                self.assertTrue(done["payment_method"].startswith("pm_"))
                server = layer.call("POST", f"/v1/setup_intents/{setup['id']}/confirm",
                                    {"payment_method_data": {"type": "card", "card": card}})  # fmt: skip
                self.assertEqual(server.error["code"], "parameter_unknown")

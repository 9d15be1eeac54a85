"""Connect: requests for a connected account with the `Stripe-Account` header (fakes/stripe/
connect.py), in process and over loopback HTTP.

docs.stripe.com/connect/authentication: "For server-side API calls, you can make requests as
connected accounts using the special header Stripe-Account with the Stripe account
identifier (it starts with the prefix acct_) of your platform user"; what such a request
creates is the connected account's, reached with the same header, not the platform's."""

import stripe
from django.test import SimpleTestCase

from tests.stripe_layers import PUBLISHABLE, TwoLayersMixin

CHARGE = {"amount": 2000, "currency": "usd", "source": "tok_visa"}


class ConnectedAccountTests(TwoLayersMixin, SimpleTestCase):
    def account(self, layer):
        return layer.ok("POST", "/v1/accounts", {"type": "custom"})["id"]

    def test_what_an_account_creates_is_reached_only_with_its_header(self):
        """docs.stripe.com/connect/authentication: objects made with `Stripe-Account` belong
        to that account; the platform (no header) and other accounts see none of them."""
        for layer in self.layers():
            with self.subTest(layer.name):
                first, second = self.account(layer), self.account(layer)
                as_first = {"Stripe-Account": first}
                platform = layer.ok("POST", "/v1/charges", CHARGE)
                charge = layer.ok("POST", "/v1/charges", CHARGE, headers=as_first)
                self.assertEqual(layer.ok("GET", f"/v1/charges/{charge['id']}",
                                          headers=as_first), charge)  # fmt: skip
                for headers in ({}, {"Stripe-Account": second}):
                    hidden = layer.call("GET", f"/v1/charges/{charge['id']}", headers=headers)
                    self.assertEqual((hidden.status, hidden.error["code"]),
                                     (404, "resource_missing"))  # fmt: skip
                mine = layer.call("GET", f"/v1/charges/{platform['id']}", headers=as_first)
                self.assertEqual(mine.status, 404)
                # lists and parameters are scoped too
                self.assertEqual([c["id"] for c in layer.ok("GET", "/v1/charges",
                                 headers=as_first)["data"]], [charge["id"]])  # fmt: skip
                self.assertEqual([c["id"] for c in layer.ok("GET", "/v1/charges")["data"]],
                                 [platform["id"]])  # fmt: skip
                refund = layer.call("POST", "/v1/refunds", {"charge": charge["id"]})
                self.assertEqual(refund.error["code"], "resource_missing")
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"},
                                    headers=as_first)  # fmt: skip
                card = layer.ok("GET", f"/v1/customers/{customer['id']}/sources/"
                                f"{customer['default_source']}", headers=as_first)  # fmt: skip
                self.assertEqual(card["customer"], customer["id"])
                self.assertEqual(layer.call("GET", f"/v1/customers/{customer['id']}").status, 404)
                elsewhere = layer.call("POST", "/v1/charges", {
                    "amount": 500, "currency": "usd", "customer": customer["id"]})  # fmt: skip
                self.assertEqual(elsewhere.error["param"], "customer")
                # generic objects too (products, ...), with an id given on create
                product = layer.ok("POST", "/v1/products", {"name": "P", "id": "prod_mine"},
                                   headers=as_first)  # fmt: skip
                self.assertEqual(layer.call("GET", f"/v1/products/{product['id']}").status, 404)
                with layer.library():  # stripe-python's own stripe_account= option
                    made = stripe.Customer.create(email="c@example.com", stripe_account=second)
                    self.assertEqual(
                        stripe.Customer.retrieve(made.id, stripe_account=second).email,
                        "c@example.com",
                    )
                    with self.assertRaises(stripe.InvalidRequestError):
                        stripe.Customer.retrieve(made.id)

    def test_an_account_the_platform_does_not_have_is_account_invalid(self):
        """docs.stripe.com/error-codes#account-invalid: "The provided key ... does not have
        access to account ... (or that account does not exist)": 403, nothing done."""
        for layer in self.layers():
            with self.subTest(layer.name):
                refused = layer.call("POST", "/v1/charges", CHARGE,
                                     headers={"Stripe-Account": "acct_invalid"})  # fmt: skip
                self.assertEqual((refused.status, refused.error["code"]),
                                 (403, "account_invalid"))  # fmt: skip
                self.assertIn("'acct_invalid'", refused.error["message"])
                self.assertNotIn("sk_test_layers", refused.error["message"])  # key masked
                self.assertEqual(layer.engine.all("charge"), [])
                deleted = self.account(layer)
                layer.ok("DELETE", f"/v1/accounts/{deleted}")
                gone = layer.call("GET", "/v1/customers", headers={"Stripe-Account": deleted})
                self.assertEqual(gone.status, 403)

    def test_a_connected_account_is_not_a_platform(self):
        """A connected account creates no accounts, and /v1/accounts/{id} with another account
        in the header is refused; GET /v1/account with the header is that account."""
        for layer in self.layers():
            with self.subTest(layer.name):
                connected, other = self.account(layer), self.account(layer)
                headers = {"Stripe-Account": connected}
                created = layer.call("POST", "/v1/accounts", {"type": "custom"}, headers=headers)
                self.assertEqual(created.status, 400)
                self.assertIn("Connect", created.error["message"])
                self.assertEqual(layer.ok("GET", "/v1/account", headers=headers)["id"], connected)
                self.assertEqual(
                    layer.ok("GET", f"/v1/accounts/{connected}", headers=headers)["id"], connected
                )
                mismatch = layer.call("GET", f"/v1/accounts/{other}", headers=headers)
                self.assertEqual(mismatch.status, 400)
                self.assertIn("Stripe-Account header", mismatch.error["message"])

    def test_idempotency_keys_events_and_balance_are_the_accounts_own(self):
        """An idempotency key on two accounts is two requests; events carry `account` ("The
        connected account that originates the event", docs.stripe.com/api/events/object);
        GET /v1/balance is the account's (docs.stripe.com/connect/account-balances)."""
        for layer in self.layers():
            with self.subTest(layer.name):
                first, second = self.account(layer), self.account(layer)
                one = layer.ok("POST", "/v1/charges", CHARGE, headers={
                    "Stripe-Account": first, "Idempotency-Key": "order-1"})  # fmt: skip
                two = layer.call("POST", "/v1/charges", {**CHARGE, "amount": 3000}, headers={
                    "Stripe-Account": second, "Idempotency-Key": "order-1"})  # fmt: skip
                self.assertEqual((two.status, two.json["amount"]), (200, 3000))
                replay = layer.call("POST", "/v1/charges", CHARGE, headers={
                    "Stripe-Account": first, "Idempotency-Key": "order-1"})  # fmt: skip
                self.assertEqual((replay.json["id"], replay.headers.get("Idempotent-Replayed")),
                                 (one["id"], "true"))  # fmt: skip
                events = layer.ok("GET", "/v1/events", headers={"Stripe-Account": first})["data"]
                self.assertEqual({e["account"] for e in events}, {first})
                self.assertEqual([e["data"]["object"]["id"] for e in events], [one["id"]])
                self.assertEqual(layer.ok("GET", "/v1/events")["data"], [])
                pending = layer.ok("GET", "/v1/balance", headers={"Stripe-Account": second})
                self.assertEqual(pending["pending"][0]["amount"], 3000 - round(3000 * 0.029) - 30)
                self.assertEqual(layer.ok("GET", "/v1/balance")["pending"][0]["amount"], 0)

    def test_stripe_js_names_the_account_as_a_form_parameter(self):
        """Stripe.js's `stripeAccount` option sends `_stripe_account` with the publishable key
        (docs.stripe.com/connect/authentication, "Adding the connected account ID to a
        client-side application"): the token is the connected account's."""
        for layer in self.layers():
            with self.subTest(layer.name):
                connected = self.account(layer)
                token = layer.ok("POST", "/v1/tokens", key=None, form=(
                    f"key={PUBLISHABLE}&_stripe_account={connected}&card[number]=4242424242424242"
                    "&card[exp_month]=12&card[exp_year]=2040&card[cvc]=123"))  # fmt: skip
                stolen = layer.call("POST", "/v1/charges", {**CHARGE, "source": token["id"]})
                self.assertEqual(stolen.error["code"], "resource_missing")
                charge = layer.ok("POST", "/v1/charges", {**CHARGE, "source": token["id"]},
                                  headers={"Stripe-Account": connected})  # fmt: skip
                self.assertEqual(charge["status"], "succeeded")


class ConnectInStripeMockModeTests(TwoLayersMixin, SimpleTestCase):
    engine_options = {"stripe_mock": True}

    def test_an_account_never_issued_is_ignored_as_stripe_mock_ignores_it(self):
        """stripe-python's own suite sends `Stripe-Account: acct_123` to stripe-mock, which
        answers as if it were absent."""
        for layer in self.layers():
            with self.subTest(layer.name):
                charge = layer.ok("POST", "/v1/charges", CHARGE,
                                  headers={"Stripe-Account": "acct_123"})  # fmt: skip
                self.assertEqual(layer.ok("GET", f"/v1/charges/{charge['id']}")["id"],
                                 charge["id"])  # fmt: skip

"""expand[] from the declarations and balance transactions for the money that moved.

docs.stripe.com/api/expanding_objects: expandable fields only (stripe-python declares them
ExpandableField), dotted paths, `data.` on lists, four levels; anything else 400.
docs.stripe.com/api/balance_transactions/object and docs.stripe.com/api/balance.
Each check runs in process and over loopback HTTP."""

import stripe
from django.test import SimpleTestCase

from tests.stripe_layers import TwoLayersMixin

CHARGE = {"amount": 1000, "currency": "usd", "source": "tok_visa"}


class ExpansionTests(TwoLayersMixin, SimpleTestCase):
    def test_balance_transaction_expands_to_an_object(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                charge = layer.ok(
                    "POST", "/v1/charges", {**CHARGE, "expand": ["balance_transaction"]}
                )
                txn = charge["balance_transaction"]
                self.assertEqual(txn["object"], "balance_transaction")
                # 2.9% + 30 cents (stripe.com/pricing)
                self.assertEqual((txn["amount"], txn["fee"], txn["net"], txn["currency"]),
                                 (1000, 59, 941, "usd"))  # fmt: skip
                self.assertEqual((txn["status"], txn["type"], txn["source"]),
                                 ("pending", "charge", charge["id"]))  # fmt: skip
                self.assertEqual(layer.ok("GET", f"/v1/balance_transactions/{txn['id']}"), txn)
                refund = layer.ok("POST", "/v1/refunds", {"charge": charge["id"], "amount": 400,
                                                          "expand": ["balance_transaction"]})  # fmt: skip
                self.assertEqual((refund["balance_transaction"]["amount"],
                                  refund["balance_transaction"]["type"]), (-400, "refund"))  # fmt: skip
                held = layer.ok("POST", "/v1/charges", {**CHARGE, "capture": "false"})
                self.assertIsNone(held["balance_transaction"])  # no money moved yet
                listed = layer.ok("GET", "/v1/balance_transactions")["data"]
                self.assertEqual([t["type"] for t in listed], ["refund", "charge"])
                balance = layer.ok("GET", "/v1/balance")
                self.assertEqual(balance["pending"], [{"amount": 941, "currency": "usd",
                                                       "source_types": {"card": 941}}])  # fmt: skip
                self.assertEqual(balance["available"][0]["amount"], -400)

    def test_nested_and_list_expansion(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                intent = layer.ok("POST", "/v1/payment_intents", {
                    "amount": 1000, "currency": "usd", "customer": customer["id"],
                    "payment_method": "pm_card_visa", "confirm": "true",
                    "expand": ["latest_charge.balance_transaction", "customer"]})  # fmt: skip
                self.assertEqual(intent["customer"]["id"], customer["id"])
                self.assertEqual(intent["latest_charge"]["balance_transaction"]["fee"], 59)
                listed = layer.ok("GET", "/v1/charges", {"expand": ["data.customer"]})
                self.assertEqual(listed["data"][0]["customer"]["id"], customer["id"])
                with layer.library():
                    charge = stripe.Charge.retrieve(intent["latest_charge"]["id"],
                                                    expand=["balance_transaction"])  # fmt: skip
                    self.assertIsInstance(charge.balance_transaction, stripe.BalanceTransaction)

    def test_what_cannot_be_expanded_is_a_400(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                for path, params, expand, hint in [
                    ("/v1/charges", CHARGE, "amount", ""),
                    ("/v1/charges", CHARGE, "outcome", ""),  # a nested object, not an id
                    ("/v1/charges", CHARGE, "bogus", ""),
                    ("/v1/customers", {}, "default_source.bogus", ""),
                ]:
                    answer = layer.call("POST", path, {**params, "expand": [expand]})
                    self.assertEqual(answer.status, 400, answer.text)
                    self.assertEqual(answer.error["message"],
                                     f"This property cannot be expanded ({expand}).{hint}")  # fmt: skip
                    self.assertEqual(answer.error["param"], "expand")
                self.assertEqual(layer.engine.all("charge"), [])  # refused before it ran
                on_list = layer.call("GET", "/v1/charges", {"expand": ["customer"]})
                self.assertEqual(
                    on_list.error["message"],
                    "This property cannot be expanded (customer). You may want to try "
                    "expanding 'data.customer' instead.",
                )
                deep = layer.call("GET", "/v1/payment_intents/x", {"expand": ["a.b.c.d.e"]})
                self.assertIn("more than 4 levels", deep.error["message"])


class IncludedListTests(TwoLayersMixin, SimpleTestCase):
    def test_an_included_list_descends_through_its_data(self):
        # a customer's tax_ids is an includable list: expand[]=tax_ids.data.customer
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                got = layer.call("GET", f"/v1/customers/{customer['id']}",
                                 {"expand": ["tax_ids.data.customer"]})  # fmt: skip
                self.assertEqual(got.status, 200, got.text)
                bad = layer.call("GET", f"/v1/customers/{customer['id']}",
                                 {"expand": ["tax_ids.data.bogus"]})  # fmt: skip
                self.assertEqual(bad.status, 400)

    def test_client_secrets_are_letters_and_digits_after_secret(self):
        # as Stripe's (pi_..._secret_YrKJUKribcBjcG8HVhfZluoGH): a `\w+` pattern reads it whole
        import re

        for layer in self.layers():
            with self.subTest(layer.name):
                for path in ("/v1/payment_intents", "/v1/setup_intents"):
                    params = {"amount": 500, "currency": "usd"} if "payment" in path else {}
                    secret = layer.ok("POST", path, params)["client_secret"]
                    self.assertRegex(secret, r"^(pi|seti)_\w+_secret_[A-Za-z0-9]+$")
                    self.assertEqual(
                        re.search(r"(pi|seti)_\w+_secret_\w+", secret).group(0), secret
                    )


class NewAnswerShapeTests(TwoLayersMixin, SimpleTestCase):
    """The objects this round added (balance, balance transactions, subscriptions and their
    items and invoices, customer sources) have the shape stripe-python 16 declares (Stripe's
    OpenAPI spec files are over the snapshot size limit here, so the declarations stand in)."""

    def test_answers_match_the_declarations(self):
        from tests.test_fake_stripe_surface import shape_errors

        for layer in self.layers():
            with self.subTest(layer.name):
                charge = layer.ok(
                    "POST", "/v1/charges", {**CHARGE, "expand": ["balance_transaction"]}
                )
                product = layer.ok("POST", "/v1/products", {"name": "Pro"})
                price = layer.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": 900,
                                 "product": product["id"], "recurring": {"interval": "month"}})  # fmt: skip
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                sub = layer.ok("POST", "/v1/subscriptions", {"customer": customer["id"],
                               "items": [{"price": price["id"]}], "expand": ["latest_invoice"]})  # fmt: skip
                card = layer.ok(
                    "GET", f"/v1/customers/{customer['id']}/sources/{customer['default_source']}"
                )
                checks = [
                    (layer.ok("GET", "/v1/balance"), stripe.Balance),
                    (charge["balance_transaction"], stripe.BalanceTransaction),
                    (sub, stripe.Subscription),
                    (sub["items"]["data"][0], stripe.SubscriptionItem),
                    (sub["latest_invoice"], stripe.Invoice),
                    (sub["latest_invoice"]["lines"]["data"][0], stripe.InvoiceLineItem),
                    (card, stripe.Card),
                ]
                for obj, cls in checks:
                    # (the checker reads a ListObject field as its item class: the lists are
                    # checked through their items below)
                    errors = [e for e in shape_errors(obj, cls, cls.__name__)
                              if ".items." not in e and ".lines." not in e]  # fmt: skip
                    self.assertEqual(errors, [], cls.__name__)
                # the checker can fail
                self.assertTrue(shape_errors({**card, "bogus": 1}, stripe.Card, "Card"))

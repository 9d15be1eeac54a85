"""Subscriptions as far as their first payment (docs.stripe.com/api/subscriptions/create,
docs.stripe.com/billing/subscriptions/overview#payment-status): items, the first invoice,
active / incomplete / trialing, item updates, cancel. In process and over loopback HTTP."""

import stripe
from django.test import SimpleTestCase

from tests.stripe_layers import TwoLayersMixin


class SubscriptionTests(TwoLayersMixin, SimpleTestCase):
    def price(self, layer, amount=1200):
        product = layer.ok("POST", "/v1/products", {"name": "Pro"})
        return layer.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": amount,
                        "product": product["id"], "recurring": {"interval": "month"}})  # fmt: skip

    def test_items_first_invoice_and_status(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                price = self.price(layer)
                paying = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                sub = layer.ok("POST", "/v1/subscriptions", {
                    "customer": paying["id"], "items": [{"price": price["id"], "quantity": 2}],
                    "expand": ["latest_invoice"]})  # fmt: skip
                self.assertEqual(sub["status"], "active")
                (item,) = sub["items"]["data"]
                self.assertEqual((item["price"]["id"], item["quantity"]), (price["id"], 2))
                invoice = sub["latest_invoice"]
                self.assertEqual((invoice["amount_due"], invoice["status"]), (2400, "paid"))
                lines = layer.ok("GET", f"/v1/invoices/{invoice['id']}/lines")["data"]
                self.assertEqual([line["amount"] for line in lines], [2400])
                self.assertEqual(layer.engine.all("charge")[-1]["amount"], 2400)
                # no way to pay: incomplete, the invoice open (no 402)
                broke = layer.ok("POST", "/v1/customers", {})
                unpaid = layer.ok("POST", "/v1/subscriptions", {
                    "customer": broke["id"], "items": [{"price": price["id"]}]})  # fmt: skip
                self.assertEqual(unpaid["status"], "incomplete")
                # a card whose charges fail (attached fine): incomplete too
                failing = layer.ok("POST", "/v1/customers", {"source": "tok_chargeCustomerFail"})
                declined = layer.ok("POST", "/v1/subscriptions", {
                    "customer": failing["id"], "items": [{"price": price["id"]}]})  # fmt: skip
                self.assertEqual(declined["status"], "incomplete")
                trial = layer.ok("POST", "/v1/subscriptions", {
                    "customer": broke["id"], "items": [{"price": price["id"]}],
                    "trial_period_days": 7})  # fmt: skip
                self.assertEqual(trial["status"], "trialing")

    def test_update_items_and_cancel(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                price = self.price(layer)
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                sub = layer.ok("POST", "/v1/subscriptions", {
                    "customer": customer["id"], "items": [{"price": price["id"]}]})  # fmt: skip
                item = sub["items"]["data"][0]
                updated = layer.ok("POST", f"/v1/subscriptions/{sub['id']}",
                                   {"items": [{"id": item["id"], "quantity": 3}]})  # fmt: skip
                self.assertEqual(updated["items"]["data"][0]["quantity"], 3)
                self.assertEqual(
                    layer.ok("GET", f"/v1/subscription_items/{item['id']}")["quantity"], 3
                )
                got = layer.ok(
                    "GET", f"/v1/customers/{customer['id']}", {"expand": ["subscriptions"]}
                )
                self.assertEqual([s["id"] for s in got["subscriptions"]["data"]], [sub["id"]])
                missing = layer.call("POST", "/v1/subscriptions", {
                    "customer": customer["id"], "items": [{"price": "price_missing"}]})  # fmt: skip
                self.assertEqual((missing.status, missing.error["param"]), (400, "items[0][price]"))
                with layer.library():
                    canceled = stripe.Subscription.cancel(sub["id"])
                    self.assertEqual(canceled.status, "canceled")

    def test_a_credit_balance_pays_the_first_invoice(self):
        # "A negative balance represents a credit ... applied to the next invoice"
        # (docs.stripe.com/billing/customer/balance)
        for layer in self.layers():
            with self.subTest(layer.name):
                price = self.price(layer)
                customer = layer.ok("POST", "/v1/customers", {"balance": -2000})
                sub = layer.ok("POST", "/v1/subscriptions", {
                    "customer": customer["id"], "items": [{"price": price["id"]}],
                    "expand": ["latest_invoice"]})  # fmt: skip
                invoice = sub["latest_invoice"]
                self.assertEqual((invoice["amount_due"], invoice["starting_balance"],
                                  invoice["ending_balance"]), (0, -2000, -800))  # fmt: skip
                self.assertEqual(sub["status"], "active")
                self.assertEqual(
                    layer.ok("GET", f"/v1/customers/{customer['id']}")["balance"], -800
                )
                gone = layer.call("GET", "/v1/customers/cus_missing/sources/card_1")
                self.assertEqual(gone.status, 404)  # the customer the URL names

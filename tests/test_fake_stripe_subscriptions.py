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


class FirstInvoiceTests(TwoLayersMixin, SimpleTestCase):
    """What the first invoice bills besides the items: pending invoice items and tax rates."""

    def test_pending_invoice_items_and_tax_rates_are_on_the_first_invoice(self):
        """Pending items: "you can still add invoice items to the customer, and these will
        apply to the next invoice" (docs.stripe.com/billing/invoices/subscription); "If no
        invoice is specified, the item will be on the next invoice created for the customer"
        (docs.stripe.com/api/invoiceitems/create). Tax rates: an item's `tax_rates`, else the
        subscription's `default_tax_rates`; exclusive rates add to the amount, inclusive ones
        are part of it (docs.stripe.com/billing/taxes/tax-rates)."""
        for layer in self.layers():
            with self.subTest(layer.name):
                vat = layer.ok("POST", "/v1/tax_rates", {
                    "display_name": "VAT", "percentage": "8.5", "inclusive": "false"})  # fmt: skip
                included = layer.ok("POST", "/v1/tax_rates", {
                    "display_name": "GST", "percentage": "25", "inclusive": "true"})  # fmt: skip
                layer.ok("POST", "/v1/plans", {"id": "annual", "product": {"name": "Basic"},
                         "amount": 20000, "currency": "eur", "interval": "year"})  # fmt: skip
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                self.assertIsNone(customer["currency"])
                discount = layer.ok("POST", "/v1/invoiceitems", {
                    "customer": customer["id"], "amount": -4900, "currency": "eur",
                    "description": "One time discount", "tax_rates": [vat["id"]]})  # fmt: skip
                self.assertEqual(
                    (
                        discount["invoice"],
                        discount["quantity"],
                        [r["id"] for r in discount["tax_rates"]],
                    ),
                    (None, 1, [vat["id"]]),
                )  # tax_rates: the objects, as Stripe answers them
                other_currency = layer.ok("POST", "/v1/invoiceitems", {
                    "customer": customer["id"], "amount": 700, "currency": "usd"})  # fmt: skip
                sub = layer.ok("POST", "/v1/subscriptions", {
                    "customer": customer["id"],
                    "items": [{"plan": "annual", "tax_rates": [vat["id"]]}],
                    "expand": ["latest_invoice"]})  # fmt: skip
                invoice = sub["latest_invoice"]
                # 20000 + 8.5% (1700), -4900 + 8.5% (-416.5: -417, half away from zero)
                self.assertEqual([line["amount"] for line in invoice["lines"]["data"]],
                                 [20000, -4900])  # fmt: skip
                self.assertEqual([line["taxes"][0]["amount"] for line in invoice["lines"]["data"]],
                                 [1700, -417])  # fmt: skip
                self.assertEqual((invoice["subtotal"], invoice["total"], invoice["amount_due"],
                                  invoice["status"]), (15100, 16383, 16383, "paid"))  # fmt: skip
                self.assertEqual([(t["amount"], t["tax_rate_details"]["tax_rate"])
                                  for t in invoice["total_taxes"]], [(1283, vat["id"])])  # fmt: skip
                self.assertEqual(layer.engine.all("charge")[-1]["amount"], 16383)
                self.assertEqual(layer.ok("GET", f"/v1/invoiceitems/{discount['id']}")["invoice"],
                                 invoice["id"])  # fmt: skip
                self.assertIsNone(
                    layer.ok("GET", f"/v1/invoiceitems/{other_currency['id']}")["invoice"]
                )
                # "The currency the customer can be charged in for recurring billing purposes"
                # (docs.stripe.com/api/customers/object#customer_object-currency)
                again = layer.ok("GET", f"/v1/customers/{customer['id']}")
                self.assertEqual(again["currency"], "eur")
                # numbered from the customer's invoice_prefix and next_invoice_sequence
                # (docs.stripe.com/api/customers/object#customer_object-next_invoice_sequence)
                self.assertEqual(
                    (invoice["number"], again["next_invoice_sequence"]),
                    (f"{customer['invoice_prefix']}-0001", 2),
                )
                # default_tax_rates, inclusive: 10000 holds 2000 of tax (10000 x 25 / 125)
                price = layer.ok("POST", "/v1/prices", {"currency": "eur", "unit_amount": 10000,
                                 "product_data": {"name": "Pro"},
                                 "recurring": {"interval": "month"}})  # fmt: skip
                second = layer.ok("POST", "/v1/subscriptions", {
                    "customer": customer["id"], "items": [{"price": price["id"]}],
                    "default_tax_rates": [included["id"]], "expand": ["latest_invoice"]})  # fmt: skip
                self.assertEqual([r["id"] for r in second["default_tax_rates"]], [included["id"]])
                invoice = second["latest_invoice"]
                self.assertEqual((invoice["total"], invoice["total_excluding_tax"],
                                  invoice["lines"]["data"][0]["taxes"][0]["amount"]),
                                 (10000, 8000, 2000))  # fmt: skip
                missing = layer.call("POST", "/v1/subscriptions", {
                    "customer": customer["id"],
                    "items": [{"plan": "annual", "tax_rates": ["txr_missing"]}]})  # fmt: skip
                self.assertEqual((missing.status, missing.error["param"]),
                                 (400, "items[0][tax_rates][0]"))  # fmt: skip
                self.assertEqual(len(layer.engine.all("subscription")), 2)  # nothing made
                nobody = layer.call("POST", "/v1/subscriptions", {"items": [{"plan": "annual"}]})
                self.assertEqual((nobody.error["code"], nobody.error["param"]),
                                 ("parameter_missing", "customer"))  # fmt: skip

    def test_a_preview_for_a_customer_with_nothing_to_bill(self):
        """invoice_upcoming_none: "There is no upcoming invoice on the specified customer to
        preview. Only customers with active subscriptions or pending invoice items have
        invoices that can be previewed" (docs.stripe.com/error-codes#invoice-upcoming-none)."""
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                preview = {"customer": customer["id"]}
                none = layer.call("POST", "/v1/invoices/create_preview", preview)
                self.assertEqual((none.status, none.error["code"]),
                                 (404, "invoice_upcoming_none"))  # fmt: skip
                layer.ok("POST", "/v1/invoiceitems", {
                    "customer": customer["id"], "amount": 500, "currency": "usd"})  # fmt: skip
                self.assertEqual(
                    layer.call("POST", "/v1/invoices/create_preview", preview).status, 200
                )

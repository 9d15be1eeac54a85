"""Rules between parameters Stripe documents, and a customer's cards (the legacy sources).

docs.stripe.com/api/payment_intents/create (off_session, return_url, ... "can only be used
with confirm=true"; setup_future_usage), docs.stripe.com/api/customers/create
(payment_method), docs.stripe.com/api/cards. Each check runs in process and over HTTP."""

import stripe
from django.test import SimpleTestCase

from tests.stripe_layers import TwoLayersMixin

INTENT = {"amount": 900, "currency": "usd", "payment_method": "pm_card_visa"}


class CrossParameterTests(TwoLayersMixin, SimpleTestCase):
    def test_confirm_only_parameters_without_confirm(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                for name, value in [("off_session", "true"), ("return_url", "https://a.example/"),
                                    ("error_on_requires_action", "true")]:  # fmt: skip
                    answer = layer.call("POST", "/v1/payment_intents", {**INTENT, name: value})
                    self.assertEqual(
                        (answer.status, answer.error["param"]), (400, name), answer.text
                    )
                    self.assertIn("confirm=true", answer.error["message"])
                self.assertEqual(layer.engine.all("payment_intent"), [])
                with_confirm = {**INTENT, "off_session": "true", "confirm": "true"}
                self.assertEqual(layer.ok("POST", "/v1/payment_intents", with_confirm)["status"],
                                 "succeeded")  # fmt: skip

    def test_setup_future_usage_on_session_with_off_session(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                answer = layer.call("POST", "/v1/payment_intents", {
                    **INTENT, "confirm": "true", "off_session": "true",
                    "setup_future_usage": "on_session"})  # fmt: skip
                self.assertEqual(
                    (answer.status, answer.error["param"]), (400, "setup_future_usage")
                )

    def test_customer_create_with_a_payment_method(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                missing = layer.call("POST", "/v1/customers", {"payment_method": "pm_missing"})
                # a missing object named by a parameter: 400 (one the URL names: 404)
                self.assertEqual((missing.status, missing.error["code"], missing.error["param"]),
                                 (400, "resource_missing", "payment_method"))  # fmt: skip
                self.assertEqual(layer.engine.all("customer"), [])  # nothing created
                customer = layer.ok("POST", "/v1/customers", {
                    "payment_method": "pm_card_visa",
                    "invoice_settings": {"default_payment_method": "pm_card_visa"}})  # fmt: skip
                listed = layer.ok("GET", f"/v1/customers/{customer['id']}/payment_methods")["data"]
                self.assertEqual([m["id"] for m in listed],
                                 [customer["invoice_settings"]["default_payment_method"]])  # fmt: skip
                declined = layer.call("POST", "/v1/customers",
                                      {"payment_method": "pm_card_visa_chargeDeclined"})  # fmt: skip
                self.assertEqual(declined.status, 402)
                self.assertEqual(len(layer.engine.all("customer")), 1)


class CustomerSourceTests(TwoLayersMixin, SimpleTestCase):
    def test_create_list_retrieve_update_delete_and_the_default(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                base = f"/v1/customers/{customer['id']}/sources"
                first = layer.ok("POST", base, {"source": "tok_visa"})
                second = layer.ok("POST", base, {"source": "tok_mastercard"})
                self.assertEqual((first["object"], first["customer"]), ("card", customer["id"]))
                got = layer.ok("GET", f"/v1/customers/{customer['id']}")
                self.assertEqual(got["default_source"], first["id"])
                listed = layer.ok("GET", base, {"object": "card"})["data"]
                self.assertEqual([c["id"] for c in listed], [second["id"], first["id"]])
                self.assertEqual(layer.ok("GET", f"{base}/{second['id']}")["last4"], "4444")
                renamed = layer.ok("POST", f"{base}/{second['id']}", {"name": "Ada"})
                self.assertEqual(renamed["name"], "Ada")
                # charging the customer without a source uses the default source
                charge = layer.ok("POST", "/v1/charges", {"amount": 500, "currency": "usd",
                                                          "customer": customer["id"]})  # fmt: skip
                self.assertEqual(charge["source"]["id"], first["id"])
                other = layer.ok("POST", "/v1/charges", {"amount": 500, "currency": "usd",
                                 "customer": customer["id"], "source": second["id"]})  # fmt: skip
                self.assertEqual(other["payment_method_details"]["card"]["last4"], "4444")
                deleted = layer.ok("DELETE", f"{base}/{first['id']}")
                self.assertEqual(deleted, {"id": first["id"], "object": "card", "deleted": True})
                got = layer.ok("GET", f"/v1/customers/{customer['id']}")
                self.assertEqual(got["default_source"], second["id"])
                missing = layer.call("GET", f"{base}/{first['id']}")
                self.assertEqual((missing.status, missing.error["code"]), (404, "resource_missing"))
                wrong = layer.call("POST", f"/v1/customers/{customer['id']}",
                                   {"default_source": first["id"]})  # fmt: skip
                self.assertEqual((wrong.status, wrong.error["param"]), (400, "default_source"))
                refused = layer.call("POST", base, {"source": "tok_chargeDeclined"})
                self.assertEqual(refused.status, 402)
                with layer.library():
                    card = stripe.Customer.create_source(customer["id"], source="tok_amex")
                    self.assertEqual(card.last4, "0005")
                    cards = stripe.Customer.list_sources(customer["id"], object="card")
                    self.assertEqual(len(cards.data), 2)


class GenericDefaultsTests(TwoLayersMixin, SimpleTestCase):
    def test_active_by_default_an_id_given_on_create_and_status_actions(self):
        # docs.stripe.com/api/products/create: `id` ("If not provided, an identifier will be
        # randomly generated"), `active` ("Defaults to true"); docs.stripe.com/api/payouts/cancel
        for layer in self.layers():
            with self.subTest(layer.name):
                product = layer.ok("POST", "/v1/products", {"id": "PRODUCT1234", "name": "Tea"})
                self.assertEqual((product["id"], product["active"]), ("PRODUCT1234", True))
                self.assertEqual(layer.ok("GET", "/v1/products/PRODUCT1234")["name"], "Tea")
                again = layer.call("POST", "/v1/products", {"id": "PRODUCT1234", "name": "x"})
                self.assertEqual(
                    (again.status, again.error["code"]), (400, "resource_already_exists")
                )
                plan = layer.ok("POST", "/v1/plans", {"amount": 500, "currency": "usd",
                                                      "interval": "month", "product": "PRODUCT1234"})  # fmt: skip
                self.assertTrue(plan["active"])
                listed = layer.ok("GET", "/v1/products", {"active": "true"})["data"]
                self.assertEqual([p["id"] for p in listed], ["PRODUCT1234"])
                payout = layer.ok("POST", "/v1/payouts", {"amount": 1100, "currency": "usd"})
                self.assertEqual(payout["status"], "pending")
                canceled = layer.ok("POST", f"/v1/payouts/{payout['id']}/cancel")
                self.assertEqual(canceled["status"], "canceled")


class SourceAttachTests(TwoLayersMixin, SimpleTestCase):
    def test_a_source_attaches_to_a_customer(self):
        # docs.stripe.com/api/sources/attach: POST /v1/customers/{id}/sources source=src_...
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {})
                source = layer.ok("POST", "/v1/sources", {"type": "ach_credit_transfer",
                                                          "currency": "usd"})  # fmt: skip
                attached = layer.ok("POST", f"/v1/customers/{customer['id']}/sources",
                                    {"source": source["id"]})  # fmt: skip
                self.assertEqual(
                    (attached["id"], attached["customer"]), (source["id"], customer["id"])
                )
                got = layer.ok("GET", f"/v1/customers/{customer['id']}")
                self.assertEqual(got["default_source"], source["id"])


class MoreDocumentedRulesTests(TwoLayersMixin, SimpleTestCase):
    def test_captures_voids_and_disputed_refunds(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                held = layer.ok("POST", "/v1/charges", {"amount": 1000, "currency": "usd",
                                                        "source": "tok_visa", "capture": "false"})  # fmt: skip
                small = layer.call("POST", f"/v1/charges/{held['id']}/capture", {"amount": 20})
                self.assertEqual(small.error["code"], "amount_too_small")  # under the minimum
                partial = layer.call("POST", "/v1/refunds", {"charge": held["id"], "amount": 300})
                self.assertEqual((partial.status, partial.error["param"]), (400, "amount"))
                self.assertIn("capture the charge for an amount less", partial.error["message"])
                disputed = layer.ok("POST", "/v1/charges", {"amount": 1000, "currency": "usd",
                                                            "source": "tok_createDispute"})  # fmt: skip
                refused = layer.call("POST", "/v1/refunds", {"charge": disputed["id"]})
                self.assertEqual(refused.error["code"], "charge_disputed")

    def test_plans_prices_and_accounts(self):
        # docs.stripe.com/api/plans/create (interval), docs.stripe.com/currencies,
        # docs.stripe.com/api/prices/object (type), docs.stripe.com/error-codes#account-invalid
        for layer in self.layers():
            with self.subTest(layer.name):
                product = layer.ok("POST", "/v1/products", {"name": "Tea"})
                base = {"amount": 500, "currency": "usd", "product": product["id"]}
                bad = layer.call("POST", "/v1/plans", {**base, "interval": "fortnight"})
                self.assertEqual((bad.status, bad.error["param"]), (400, "interval"))
                money = layer.call(
                    "POST", "/v1/plans", {**base, "interval": "month", "currency": "xyz"}
                )
                self.assertEqual((money.status, money.error["param"]), (400, "currency"))
                price = layer.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": 3500,
                                 "product": product["id"], "recurring": {"interval": "month"}})  # fmt: skip
                self.assertEqual(
                    (price["type"], price["unit_amount_decimal"]), ("recurring", "3500")
                )
                once = layer.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": 100,
                                                       "product": product["id"]})  # fmt: skip
                self.assertEqual(once["type"], "one_time")
                rate = layer.ok("POST", "/v1/tax_rates", {"display_name": "VAT", "inclusive": "false",
                                                          "percentage": "20"})  # fmt: skip
                self.assertEqual(rate["metadata"], {})
                account = layer.ok("POST", "/v1/accounts", {"type": "custom"})
                self.assertIsInstance(account["created"], int)
                missing = layer.call("GET", "/v1/accounts/acct_missing")
                self.assertEqual((missing.status, missing.error["code"]), (403, "account_invalid"))

    def test_included_lists_on_a_customer(self):
        # since 2020-08-27 a customer's sources/subscriptions/tax_ids come only when expanded
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                self.assertNotIn("sources", customer)
                got = layer.ok("GET", f"/v1/customers/{customer['id']}",
                               {"expand": ["sources", "subscriptions", "tax_ids"]})  # fmt: skip
                self.assertEqual(got["sources"]["data"][0]["id"], customer["default_source"])
                self.assertEqual(got["subscriptions"]["data"], [])
                self.assertEqual(got["tax_ids"]["object"], "list")


class LegacySourceDetailsTests(TwoLayersMixin, SimpleTestCase):
    def test_missing_linked_source_and_replacing_the_default(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                first = customer["default_source"]
                # docs.stripe.com/error-codes#missing
                other = layer.ok("POST", "/v1/customers", {"source": "tok_mastercard"})
                answer = layer.call("POST", "/v1/charges", {"amount": 500, "currency": "usd",
                                    "customer": customer["id"], "source": other["default_source"]})  # fmt: skip
                self.assertEqual((answer.status, answer.error["code"], answer.error["param"]),
                                 (404, "missing", "source"))  # fmt: skip
                # with a customer, a token (or any id) not saved to it is `missing` too
                for source in ("tok_visa", "invalid-source"):
                    answer = layer.call("POST", "/v1/charges", {"amount": 500, "currency": "usd",
                                        "customer": customer["id"], "source": source})  # fmt: skip
                    self.assertEqual((answer.status, answer.error["code"]), (404, "missing"))
                self.assertEqual([c["status"] for c in layer.engine.all("charge")], [])
                # update with `source`: a new default, the old default deleted
                # (docs.stripe.com/api/customers/update#update_customer-source)
                updated = layer.ok(
                    "POST", f"/v1/customers/{customer['id']}", {"source": "tok_amex"}
                )
                self.assertNotEqual(updated["default_source"], first)
                cards = layer.ok("GET", f"/v1/customers/{customer['id']}/sources")["data"]
                self.assertEqual([c["id"] for c in cards], [updated["default_source"]])
                # a magic token carries no CVC: cvc_check null
                self.assertIsNone(cards[0]["cvc_check"])

    def test_inline_products_product_type_and_inquiry_refunds(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                plan = layer.ok("POST", "/v1/plans", {"amount": 500, "currency": "usd",
                                "interval": "month", "product": {"name": "Gold"}})  # fmt: skip
                self.assertEqual(layer.ok("GET", f"/v1/products/{plan['product']}")["name"], "Gold")
                price = layer.ok("POST", "/v1/prices", {"unit_amount": 500, "currency": "usd",
                                                        "product_data": {"name": "Tea"}})  # fmt: skip
                self.assertTrue(price["product"].startswith("prod_"))
                bad = layer.call("POST", "/v1/products", {"name": "x", "type": "gadget"})
                self.assertEqual((bad.status, bad.error["param"]), (400, "type"))
                # an inquiry leaves the charge refundable (is_charge_refundable)
                charge = layer.ok("POST", "/v1/charges", {"amount": 900, "currency": "usd",
                                                          "source": "tok_createDisputeInquiry"})  # fmt: skip
                layer.ok("POST", "/v1/refunds", {"charge": charge["id"]})


class IdempotentReplayTests(TwoLayersMixin, SimpleTestCase):
    """docs.stripe.com/error-low-level: "as long as an API method began execution, Stripe's
    API servers will cache the results of the request regardless of what they were. A request
    that returns a 400 sends back the same 400 if followed by a new request with the same
    idempotency key"; docs.stripe.com/api/idempotent_requests: "If incoming parameters fail
    validation ... we don't save the idempotent result"."""

    def test_an_error_of_an_endpoint_that_ran_is_replayed(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                charge = layer.ok("POST", "/v1/charges", {
                    "amount": 900, "currency": "usd", "source": "tok_visa"})  # fmt: skip
                layer.ok("POST", "/v1/refunds", {"charge": charge["id"]})
                again = {"Idempotency-Key": "refund-twice"}
                first = layer.call("POST", "/v1/refunds", {"charge": charge["id"]}, headers=again)
                self.assertEqual(first.error["code"], "charge_already_refunded")
                replay = layer.call("POST", "/v1/refunds", {"charge": charge["id"]}, headers=again)
                self.assertEqual((replay.status, replay.json), (first.status, first.json))
                self.assertEqual((replay.headers["Idempotent-Replayed"],
                                  replay.headers["Original-Request"]),
                                 ("true", first.headers["Request-Id"]))  # fmt: skip
                other = layer.call("POST", "/v1/refunds", {"charge": charge["id"], "amount": 5},
                                   headers=again)  # fmt: skip
                self.assertEqual(other.error["type"], "idempotency_error")  # the key is spent

    def test_a_parameter_that_fails_validation_spends_no_key(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                key = {"Idempotency-Key": "too-small"}
                small = layer.call("POST", "/v1/charges", {
                    "amount": 10, "currency": "usd", "source": "tok_visa"}, headers=key)  # fmt: skip
                self.assertEqual(small.error["code"], "amount_too_small")
                fixed = layer.call("POST", "/v1/charges", {
                    "amount": 900, "currency": "usd", "source": "tok_visa"}, headers=key)  # fmt: skip
                self.assertEqual((fixed.status, fixed.headers.get("Idempotent-Replayed")),
                                 (200, None))  # fmt: skip

    def test_a_refund_of_a_missing_charge_is_a_404_on_id(self):
        """Observed: `stripe.refunds.create({charge})` for a missing charge answers
        "No such charge" with param `id` (stripe/stripe-node#639) and status 404
        (stripe-stateful-mock's refund parity test, checked against live Stripe)."""
        for layer in self.layers():
            with self.subTest(layer.name):
                missing = layer.call("POST", "/v1/refunds", {"charge": "ch_missing"})
                self.assertEqual((missing.status, missing.error["code"], missing.error["param"]),
                                 (404, "resource_missing", "id"))  # fmt: skip


class MagicCardExpiryTests(TwoLayersMixin, SimpleTestCase):
    def test_a_magic_tokens_card_expires_this_month_next_year(self):
        """As Stripe's test mode answered stripe-stateful-mock's parity tests (checked against
        live Stripe) for tok_visa; docs.stripe.com/testing only asks for "any future date"."""
        import time

        now = time.gmtime()
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("POST", "/v1/customers", {"source": "tok_visa"})
                card = layer.ok("GET", f"/v1/customers/{customer['id']}/sources/"
                                f"{customer['default_source']}")  # fmt: skip
                self.assertEqual((card["exp_month"], card["exp_year"]),
                                 (now.tm_mon, now.tm_year + 1))  # fmt: skip
                method = layer.ok("GET", "/v1/payment_methods/pm_card_visa")
                self.assertEqual((method["card"]["exp_month"], method["card"]["exp_year"]),
                                 (now.tm_mon, now.tm_year + 1))  # fmt: skip

"""The fake Stripe's request side, driven by stripe-python's declarations (issue 12).

Every case goes through the real stripe library (in-process HTTP layer), so the library's
own form encoding is what the engine decodes.
"""

import stripe
from django.test import SimpleTestCase

from fakes.stripe import decode_form
from fakes.stripe.params import METADATA_VALUE_LENGTH
from payments.testing import fake_stripe

AUTH = {"Authorization": "Bearer sk_test_requests"}


class FormDecodingTests(SimpleTestCase):
    def test_indexed_and_bracket_arrays_are_lists_and_maps_nest(self):
        self.assertEqual(decode_form("a[0]=x&a[1]=y"), {"a": ["x", "y"]})
        self.assertEqual(decode_form("a[]=x&a[]=y"), {"a": ["x", "y"]})
        self.assertEqual(
            decode_form("items[0][price]=p&items[0][quantity]=2&items[1][price]=q"),
            {"items": [{"price": "p", "quantity": "2"}, {"price": "q"}]},
        )
        self.assertEqual(decode_form("shipping[address][city]=Paris"),
                         {"shipping": {"address": {"city": "Paris"}}})  # fmt: skip
        # metadata keys are the caller's: "0" stays a key, not an index
        self.assertEqual(decode_form("metadata[0]=x"), {"metadata": {"0": "x"}})


class DeclaredParameterTests(SimpleTestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())

    def refused(self, call):
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            call()
        error = caught.exception
        self.assertEqual(error.http_status, 400)
        return error.code, error.param, error.user_message

    def test_documented_parameters_the_old_allow_lists_refused_are_accepted(self):
        charge = stripe.Charge.create(
            amount=500,
            currency="usd",
            source="tok_visa",
            shipping={"name": "Ada", "address": {"line1": "1 Main St", "city": "Paris"}},
            statement_descriptor_suffix="ORDER 7",
            receipt_email="ada@example.com",
        )
        self.assertEqual(charge.shipping.address.city, "Paris")
        self.assertIsNone(charge.shipping.address.postal_code)  # full declared shape
        self.assertEqual(charge.receipt_email, "ada@example.com")
        customer = stripe.Customer.create(
            address={"city": "Lyon", "country": "FR"}, preferred_locales=["fr", "en"], phone="+33 1"
        )
        self.assertEqual(customer.preferred_locales, ["fr", "en"])  # a list, not {"0": ...}
        self.assertEqual((customer.address.city, customer.phone), ("Lyon", "+33 1"))
        intent = stripe.PaymentIntent.create(
            amount=500,
            currency="usd",
            payment_method_options={"card": {"request_three_d_secure": "any"}},
            allowed_payment_method_types=["card", "ideal"],
        )
        self.assertEqual(intent.allowed_payment_method_types, ["card", "ideal"])
        # "We reflect the resulting compatible subset in payment_method_types"
        # (changelog 2026-07-29.dahlia); the fake's compatible set is cards only.
        self.assertEqual(intent.payment_method_types, ["card"])

    def test_unknown_parameters_are_refused_with_the_bracket_param(self):
        cases = [
            lambda: stripe.Charge.create(
                amount=500, currency="usd", source="tok_visa",
                shipping={"name": "A", "address": {"line1": "x", "bogus": "1"}},
            ),
            lambda: stripe.Charge.retrieve("ch_x", bogus=1),
            lambda: stripe.PaymentMethod.retrieve("pm_card_visa", bogus=1),
            lambda: stripe.Customer.retrieve("cus_x", nickname="x"),
        ]  # fmt: skip
        params = ["shipping[address][bogus]", "bogus", "bogus", "nickname"]
        for call, param in zip(cases, params, strict=True):
            code, got, message = self.refused(call)
            self.assertEqual((code, got), ("parameter_unknown", param))
            self.assertEqual(message, f"Received unknown parameter: {param}")

    def test_types_enums_and_required_parameters(self):
        self.assertEqual(
            self.refused(lambda: stripe.Charge.create(amount="ten", currency="usd", source="tok_visa")),
            ("parameter_invalid_integer", "amount", "Invalid integer: ten"),
        )  # fmt: skip
        code, param, message = self.refused(
            lambda: stripe.PaymentIntent.create(amount=500, currency="usd", capture_method="later")
        )
        self.assertEqual((code, param), (None, "capture_method"))
        self.assertEqual(
            message, "Invalid capture_method: must be one of automatic, automatic_async, or manual"
        )
        self.assertEqual(
            self.refused(lambda: stripe.Charge.create(amount=500, currency="usd", capture="maybe"))[:2],
            (None, "capture"),
        )  # fmt: skip
        code, param, message = self.refused(
            lambda: stripe.Charge.create(amount=500, currency="usd", source="tok_visa", description="")
        )  # fmt: skip
        self.assertEqual((code, param), ("parameter_invalid_empty", "description"))
        self.assertIn("cannot be unset", message)
        self.assertEqual(
            self.refused(lambda: stripe.PaymentMethod.create(card={"number": "4242424242424242"}))[:2],
            ("parameter_missing", "type"),
        )  # fmt: skip
        # Closed enums are always enforced; an open one (Literal[...] | str) only where
        # params.ENUMS lists Stripe's documented values: a product's `type` is "One of good
        # or service" (docs.stripe.com/api/products/object#product_object-type).
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Product.create(name="Tea", type="bundle")
        self.assertEqual(caught.exception.param, "type")
        self.assertEqual(stripe.Product.create(name="Tea", type="good").type, "good")
        self.assertEqual(self.engine.charges, [])

    def test_metadata_rules(self):
        def charge(metadata):
            return lambda: stripe.Charge.create(
                amount=500, currency="usd", source="tok_visa", metadata=metadata
            )

        too_many = {f"k{i}": "v" for i in range(51)}
        cases = [
            (too_many, "metadata"),
            ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
            ({"note": "v" * (METADATA_VALUE_LENGTH + 1)}, "metadata[note]"),
            ({"a": {"b": "v"}}, "metadata[a]"),
        ]
        for metadata, param in cases:
            self.assertEqual(self.refused(charge(metadata))[1], param, param)
        self.assertEqual(self.engine.charges, [])
        ok = stripe.Charge.create(
            amount=500,
            currency="usd",
            source="tok_visa",
            metadata={f"k{i}": "v" for i in range(50)},
        )
        self.assertEqual(len(ok.metadata.to_dict()), 50)
        customer = stripe.Customer.create(metadata={"keep": "1", "drop": "2"})
        customer = stripe.Customer.modify(customer.id, metadata={"drop": "", "new": "3"})
        self.assertEqual(customer.metadata.to_dict(), {"keep": "1", "new": "3"})  # "" unsets
        customer = stripe.Customer.modify(customer.id, metadata="")
        self.assertEqual(customer.metadata.to_dict(), {})  # metadata="" clears all

    def test_list_parameters(self):
        for limit in (0, 101):
            self.assertEqual(
                self.refused(lambda limit=limit: stripe.Charge.list(limit=limit))[:2],
                ("parameter_invalid_integer", "limit"),
            )
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Charge.list(starting_after="ch_nope")
        self.assertEqual(
            # a missing object a parameter names is a 400 (the URL's own object: 404)
            (caught.exception.http_status, caught.exception.param),
            (400, "starting_after"),
        )
        charges = [
            stripe.Charge.create(amount=500 + i, currency="usd", source="tok_visa")
            for i in range(3)
        ]
        page = stripe.Charge.list(limit=2, expand=["data.customer"])
        self.assertEqual([c.id for c in page.data], [charges[2].id, charges[1].id])
        before = stripe.Charge.list(ending_before=charges[0].id, limit=1)
        self.assertEqual([c.id for c in before.data], [charges[1].id])
        self.assertTrue(before.has_more)

    def test_payment_method_types_is_refused_as_the_pinned_version_does(self):
        # 2026-09-30.endive: "Passing payment_method_types on this API version returns a 400
        # error with the code payment_method_types_no_longer_supported" (Stripe changelog).
        code, param, _ = self.refused(
            lambda: stripe.PaymentIntent.create(
                amount=500, currency="usd", payment_method_types=["card"]
            )
        )
        self.assertEqual((code, param), ("payment_method_types_no_longer_supported", "payment_method_types"))  # fmt: skip


class EveryEndpointAnswersTests(SimpleTestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())

    def test_products_and_balance_through_the_real_library(self):
        product = stripe.Product.create(name="Tea", metadata={"sku": "t1"})
        self.assertIsInstance(product, stripe.Product)
        self.assertTrue(product.id.startswith("prod_"))
        self.assertEqual(product.last_response.headers["Fake-Stripe-Generic"], "true")
        again = stripe.Product.retrieve(product.id)
        # active "Defaults to true" (docs.stripe.com/api/products/create)
        self.assertEqual((again.name, again.metadata["sku"], again.active), ("Tea", "t1", True))
        self.assertEqual(stripe.Product.modify(product.id, name="Green tea").name, "Green tea")
        self.assertEqual([p.id for p in stripe.Product.list().data], [product.id])
        self.assertEqual(stripe.Product.search(query="name:'Green tea'").data[0].id, product.id)
        price = stripe.Price.create(currency="usd", unit_amount=450, product=product.id)
        self.assertEqual(
            (price.object, price.unit_amount, price.product), ("price", 450, product.id)
        )
        balance = stripe.Balance.retrieve()
        self.assertIsInstance(balance, stripe.Balance)
        self.assertEqual(balance.object, "balance")
        deleted = stripe.Product.delete(product.id)
        self.assertTrue(deleted.deleted)
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Product.retrieve(product.id)
        self.assertEqual(
            (caught.exception.http_status, caught.exception.code), (404, "resource_missing")
        )

    def test_stateful_answers_are_not_marked_generic(self):
        charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertNotIn("Fake-Stripe-Generic", charge.last_response.headers)

    def test_unknown_paths_404_wrong_methods_405_and_search_is_routed(self):
        answer = self.engine.handle("GET", "/v1/no_such_things", "", b"", AUTH)
        self.assertEqual(answer.status, 404)
        answer = self.engine.handle("DELETE", "/v1/charges", "", b"", AUTH)
        self.assertEqual(answer.status, 405)
        charge = stripe.Charge.create(
            amount=500, currency="usd", source="tok_visa", metadata={"order": "7"}
        )
        stripe.Charge.create(amount=700, currency="usd", source="tok_visa", metadata={"order": "8"})
        found = stripe.Charge.search(query="metadata['order']:'7'")
        self.assertEqual((found.object, [c.id for c in found.data]), ("search_result", [charge.id]))
        self.assertEqual(len(stripe.Charge.search(query="amount>600").data), 1)

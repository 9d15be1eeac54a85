"""The wire format and the stripe-mock-compatible mode.

api.stripe.com answers JSON indented by two spaces; `compact_json=True` answers compact.
The stripe-mock-compatible mode (`FakeStripe(stripe_mock=True)`, `fake_stripe(stripe_mock=
True)`, `manage.py fakeservices --stripe-mock`): an id never issued answers a complete
object of its resource, as stripe-mock does (github.com/stripe/stripe-mock: "responses are
fixtures"), an empty first page one object, union-typed routes their first member; the
default stays stateful and strict. Multipart uploads (POST /v1/files) and every token type
(docs.stripe.com/api/tokens). Each check runs in process and over loopback HTTP."""

import io
import json

import stripe
from django.test import SimpleTestCase

from fakes.stripe import FakeStripe, fake_stripe
from tests.stripe_layers import TwoLayersMixin


class WireFormatTests(TwoLayersMixin, SimpleTestCase):
    def test_answers_are_indented_like_api_stripe_com(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                answer = layer.call("POST", "/v1/charges",
                                    {"amount": 500, "currency": "usd", "source": "tok_visa"})  # fmt: skip
                self.assertTrue(answer.text.startswith('{\n  "id": "ch_'), answer.text[:40])
                self.assertIn('\n  "object": "charge",\n', answer.text)
                error = layer.call("GET", "/v1/charges/ch_missing")
                self.assertTrue(error.text.startswith('{\n  "error": {\n    '), error.text)

    def test_compact_json_on_request(self):
        engine = FakeStripe(compact_json=True)
        answer = engine.handle("POST", "/v1/charges", "",
                               b"amount=500&currency=usd&source=tok_visa",
                               {"Authorization": "Bearer sk_test_x"})  # fmt: skip
        self.assertIn(b'"object":"charge"', answer.body)
        with fake_stripe(compact_json=True) as shared:
            self.assertTrue(shared.compact_json)
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertFalse(shared.compact_json)  # restored after the block

    def test_every_token_type_and_multipart_files(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                bank = layer.ok("POST", "/v1/tokens", {"bank_account": {
                    "country": "US", "currency": "usd", "account_holder_name": "Ada",
                    "routing_number": "110000000", "account_number": "000123456789"}})  # fmt: skip
                self.assertEqual(
                    (bank["type"], bank["bank_account"]["last4"]), ("bank_account", "6789")
                )
                self.assertNotIn("000123456789", json.dumps(bank))
                for kind, data in [("pii", {"id_number": "000000000"}),
                                   ("cvc_update", {"cvc": "123"}),
                                   ("person", {"first_name": "Ada"}),
                                   ("account", {"business_type": "individual"})]:  # fmt: skip
                    self.assertEqual(layer.ok("POST", "/v1/tokens", {kind: data})["type"], kind)
                with layer.library():
                    uploaded = stripe.File.create(purpose="dispute_evidence",
                                                  file=io.BytesIO(b"%PDF-1.4 evidence"))  # fmt: skip
                    self.assertEqual(
                        (uploaded.object, uploaded.purpose), ("file", "dispute_evidence")
                    )


class StripeMockModeTests(TwoLayersMixin, SimpleTestCase):
    engine_options = {"stripe_mock": True}

    def test_an_id_never_issued_answers_a_complete_object(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                customer = layer.ok("GET", "/v1/customers/cus_xxxxxxxxxxxxx")
                self.assertEqual(
                    (customer["id"], customer["object"]), ("cus_xxxxxxxxxxxxx", "customer")
                )
                self.assertIn("invoice_settings", customer)
                invoice = layer.ok("POST", "/v1/invoices/in_123", {"description": "x"})
                self.assertEqual((invoice["id"], invoice["description"]), ("in_123", "x"))
                listed = layer.ok("GET", "/v1/invoices")["data"]
                self.assertTrue(listed and listed[0]["object"] == "invoice")
                external = layer.ok("GET", "/v1/accounts/acct_1/external_accounts/ba_1")
                self.assertIn(external["object"], ("bank_account", "card"))
                # still stateful: what was created is what is answered
                made = layer.ok("POST", "/v1/customers", {"email": "a@example.com"})
                self.assertEqual(layer.ok("GET", f"/v1/customers/{made['id']}")["email"],
                                 "a@example.com")  # fmt: skip
                with layer.library():
                    self.assertIsInstance(stripe.Charge.list().data[0], stripe.Charge)

    def test_the_default_stays_strict(self):
        engine = FakeStripe()
        answer = engine.handle("GET", "/v1/customers/cus_xxxxxxxxxxxxx", "", b"",
                               {"Authorization": "Bearer sk_test_x"})  # fmt: skip
        self.assertEqual(answer.status, 404)
        with fake_stripe(stripe_mock=True):
            self.assertEqual(stripe.Customer.retrieve("cus_123").id, "cus_123")
        with fake_stripe(), self.assertRaises(stripe.InvalidRequestError):
            stripe.Customer.retrieve("cus_123")


class StripeMockFixtureTests(TwoLayersMixin, SimpleTestCase):
    engine_options = {"stripe_mock": True}

    def test_fixtures_keep_no_state_and_never_break(self):
        # stripe-mock answers every call from its fixture: canceling pi_123 in one test does
        # not make the next test's confirm of pi_123 fail; a refund of an invented charge
        # answers a refund, never a 500
        for layer in self.layers():
            with self.subTest(layer.name):
                layer.ok("POST", "/v1/payment_intents/pi_123/cancel")
                confirmed = layer.ok("POST", "/v1/payment_intents/pi_123/confirm",
                                     {"payment_method": "pm_card_visa"})  # fmt: skip
                self.assertEqual(confirmed["id"], "pi_123")
                refund = layer.ok("POST", "/v1/refunds", {"charge": "ch_xxxxxxxxxxxxx"})
                self.assertEqual(refund["object"], "refund")
                charge = layer.ok("POST", "/v1/charges", {"amount": 500, "currency": "usd",
                                                          "source": "tok_xxxx"})  # fmt: skip
                self.assertEqual(charge["status"], "succeeded")
                for source in ("card_123", "ba_123", "src_123"):
                    got = layer.ok("GET", f"/v1/customers/cus_123/sources/{source}")
                    self.assertEqual((got["id"], got["customer"]), (source, "cus_123"))
                cash = layer.ok("GET", "/v1/customers/cus_123/cash_balance")
                self.assertEqual(cash["object"], "cash_balance")

    def test_served_at_the_root_as_stripe_mock_is(self):
        # `manage.py fakeservices --stripe-mock` mounts the fake Stripe at / as well
        from fakes.server import FakeServer

        engine = FakeStripe(stripe_mock=True)
        with FakeServer({"/": engine}).start() as server:
            answer = self.session.get(server.url + "/v1/customers/cus_123",
                                      headers={"Authorization": "Bearer sk_test_123"})  # fmt: skip
        self.assertEqual((answer.status_code, answer.json()["id"]), (200, "cus_123"))


class StripeMockNestedFixtureTests(TwoLayersMixin, SimpleTestCase):
    """stripe-mock's fixtures hold one object in each sub-list, at the URL that lists it, and
    a search answers one object with `total_count`; stripe-python's tests read them
    (`invoice.lines.data[0]`, `charge.refunds.retrieve(id)`, `search(...).total_count`)."""

    engine_options = {"stripe_mock": True}

    def test_sub_lists_hold_one_object_at_their_url(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                invoice = layer.ok("GET", "/v1/invoices/in_123")
                lines = invoice["lines"]
                self.assertEqual((lines["url"], len(lines["data"]), lines["data"][0]["object"]),
                                 ("/v1/invoices/in_123/lines", 1, "line_item"))  # fmt: skip
                charge = layer.ok("GET", "/v1/charges/ch_123")
                self.assertEqual(charge["refunds"]["url"], "/v1/charges/ch_123/refunds")
                fee = layer.ok("GET", "/v1/application_fees/fee_123")
                self.assertEqual(fee["refunds"]["url"], "/v1/application_fees/fee_123/refunds")
                with layer.library():
                    fee = stripe.ApplicationFee.retrieve("fee_123")
                    refund = fee.refunds.retrieve("fr_123")
                    self.assertEqual((refund.id, refund.fee), ("fr_123", "fee_123"))
                    self.assertEqual(
                        stripe.Charge.retrieve("ch_123").refunds.retrieve("re_abc").id, "re_abc"
                    )
                    found = stripe.Charge.search(query='currency:"USD"')
                    self.assertEqual((found.total_count, len(found.data)), (1, 1))
                    self.assertIsInstance(found.data[0], stripe.Charge)


class LegacyChargeRefundRoutesTests(TwoLayersMixin, SimpleTestCase):
    def test_a_charges_refunds_at_the_url_its_list_names(self):
        """GET /v1/charges/{charge}/refunds[/{refund}], which stripe.Charge still calls
        (`list_refunds`, `retrieve_refund`) and a charge's `refunds.url` names."""
        for layer in self.layers():
            with self.subTest(layer.name):
                charge = layer.ok("POST", "/v1/charges", {
                    "amount": 900, "currency": "usd", "source": "tok_visa"})  # fmt: skip
                refund = layer.ok("POST", "/v1/refunds", {"charge": charge["id"], "amount": 100})
                listed = layer.ok("GET", charge["refunds"]["url"])
                self.assertEqual([r["id"] for r in listed["data"]], [refund["id"]])
                other = layer.ok("POST", "/v1/charges", {
                    "amount": 900, "currency": "usd", "source": "tok_visa"})  # fmt: skip
                self.assertEqual(layer.call(
                    "GET", f"/v1/charges/{other['id']}/refunds/{refund['id']}").status, 404)  # fmt: skip
                with layer.library():
                    self.assertEqual(
                        stripe.Charge.retrieve_refund(charge["id"], refund["id"]).amount, 100
                    )
